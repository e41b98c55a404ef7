# Shared by scripts/test and scripts/cloud: install RabbitMQ and MariaDB from
# Debian when missing and start them without systemd (this machine's PID 1 is
# not systemd; see DESIGN §4). Each start_* sets a variable saying whether
# this shell started the daemon, so the caller stops only what it started.

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== apt-get install ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

STARTED_RABBITMQ=0
start_rabbitmq() {
    apt_install rabbitmq-server
    if rabbitmqctl -q status >/dev/null 2>&1; then
        return 0
    fi
    rabbitmq-server -detached
    # `-detached` returns before the Erlang node has registered with epmd, and
    # await_startup fails at once (exit 69) on a node it cannot reach yet: poll
    # until the node answers, then wait for the application to finish booting.
    local up=0
    for _ in $(seq 1 120); do
        if rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1; then
            up=1
            break
        fi
        sleep 1
    done
    if [ "$up" != 1 ]; then
        echo "rabbitmq-server did not start; its logs follow" >&2
        tail -n 50 /var/log/rabbitmq/*.log >&2 2>/dev/null || true
        return 1
    fi
    STARTED_RABBITMQ=1
}

stop_rabbitmq() {
    [ "$STARTED_RABBITMQ" = 1 ] || return 0
    rabbitmqctl -q shutdown || true
    epmd -kill >/dev/null 2>&1 || true
    STARTED_RABBITMQ=0
}

# rabbit_vhost NAME USER PASSWORD: a fresh virtual host NAME (emptied if it
# existed) that USER may use.
rabbit_vhost() {
    local vhost=$1 user=$2 password=$3
    rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$user" || rabbitmqctl -q add_user "$user" "$password" >/dev/null
    rabbitmqctl -q change_password "$user" "$password" >/dev/null
    rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
    rabbitmqctl -q add_vhost "$vhost" >/dev/null
    rabbitmqctl -q set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null
}

STARTED_MARIADB=0
start_mariadb() {
    apt_install mariadb-server
    if mariadb-admin --silent ping >/dev/null 2>&1; then
        return 0
    fi
    install -d -o mysql -g root -m 755 /run/mysqld
    setsid mariadbd --user=mysql >/var/log/mariadbd.log 2>&1 </dev/null &
    for _ in $(seq 1 600); do
        mariadb-admin --silent ping >/dev/null 2>&1 && { STARTED_MARIADB=1; return 0; }
        sleep 0.1
    done
    echo "mariadbd did not start; see /var/log/mariadbd.log" >&2
    return 1
}

stop_mariadb() {
    [ "$STARTED_MARIADB" = 1 ] || return 0
    mariadb-admin shutdown || true
    STARTED_MARIADB=0
}
