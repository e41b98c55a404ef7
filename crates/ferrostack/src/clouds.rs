//! The files that let the `openstack` CLI and SDK reach an all-in-one cloud:
//! `clouds.yaml` (cloud name `ferrostack`) and a shell `openrc`.

use std::io::Write;
use std::path::Path;

pub struct Credentials<'a> {
    pub auth_url: &'a str,
    pub password: &'a str,
    pub region: &'a str,
}

/// YAML and shell both accept a single-quoted string with `'` doubled or escaped;
/// passwords we generate are plain, but an operator's may not be.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn clouds_yaml(c: &Credentials) -> String {
    format!(
        "clouds:\n  ferrostack:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {}\n      \
         project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: {}\n    interface: public\n    identity_api_version: 3\n",
        yaml_quote(c.auth_url),
        yaml_quote(c.password),
        yaml_quote(c.region)
    )
}

pub fn openrc(c: &Credentials) -> String {
    format!(
        "# Source this file to use the ferrostack cloud with the openstack CLI.\n\
         export OS_AUTH_URL={}\nexport OS_USERNAME=admin\nexport OS_PASSWORD={}\nexport OS_PROJECT_NAME=admin\n\
         export OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\nexport OS_REGION_NAME={}\n\
         export OS_IDENTITY_API_VERSION=3\nexport OS_INTERFACE=public\n",
        shell_quote(c.auth_url),
        shell_quote(c.password),
        shell_quote(c.region)
    )
}

/// The admin's `auth_url` and `password` from a clouds.yaml as [`clouds_yaml`]
/// writes it (one cloud; values plain or single-quoted). Not a YAML parser:
/// enough for the benchmarks to find a cloud this binary set up.
pub fn read_admin(text: &str) -> Option<(String, String)> {
    let value = |key: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(key)).map(|v| {
            let v = v.trim();
            match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(quoted) => quoted.replace("''", "'"),
                None => v.trim_matches('"').to_string(),
            }
        })
    };
    Some((value("auth_url:")?, value("password:")?))
}

/// Writes `content` readable only by the owner: both files hold the password.
pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_admin_is_read_back_from_clouds_yaml() {
        let c = Credentials { auth_url: "http://127.0.0.1:5000/v3", password: "it's", region: "RegionOne" };
        let (url, pw) = read_admin(&clouds_yaml(&c)).unwrap();
        assert_eq!((url.as_str(), pw.as_str()), ("http://127.0.0.1:5000/v3", "it's"));
        assert!(read_admin("clouds: {}").is_none());
    }

    use super::*;

    #[test]
    fn quotes_survive_in_both_files() {
        let c = Credentials { auth_url: "http://127.0.0.1:5000/v3", password: "it's", region: "RegionOne" };
        assert!(clouds_yaml(&c).contains("password: 'it''s'"));
        assert!(openrc(&c).contains("OS_PASSWORD='it'\\''s'"));
    }
}
