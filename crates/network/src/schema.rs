//! The network database. Each API resource is a row whose `attrs` column holds
//! its attributes as JSON (what the API shows), next to copies of the few
//! attributes the database must index or keep unique (`network_id`,
//! `mac_address`, …). The tables that guard against double allocation — IP
//! addresses, VLAN ids, tunnel ids, flat networks — are plain relational tables
//! whose primary keys make a second allocation fail.

use db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "network schema",
        statements: &[
            "CREATE TABLE network (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE TABLE network_segment (
            id VARCHAR(64) PRIMARY KEY,
            network_id VARCHAR(64) NOT NULL,
            network_type VARCHAR(32) NOT NULL,
            physical_network VARCHAR(64),
            segmentation_id BIGINT,
            segment_index BIGINT NOT NULL)",
            "CREATE INDEX network_segment_network ON network_segment (network_id)",
            "CREATE TABLE subnet (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            network_id VARCHAR(64) NOT NULL,
            subnetpool_id VARCHAR(64),
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE INDEX subnet_network ON subnet (network_id)",
            "CREATE TABLE port (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            network_id VARCHAR(64) NOT NULL,
            mac_address VARCHAR(32) NOT NULL,
            device_id VARCHAR(255) NOT NULL,
            device_owner VARCHAR(255) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            UNIQUE (network_id, mac_address))",
            "CREATE INDEX port_network ON port (network_id)",
            "CREATE INDEX port_device ON port (device_id)",
            // One row per address in use: the key makes a second allocation fail.
            "CREATE TABLE ip_allocation (
            subnet_id VARCHAR(64) NOT NULL,
            ip_address VARCHAR(64) NOT NULL,
            network_id VARCHAR(64) NOT NULL,
            port_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (subnet_id, ip_address))",
            "CREATE INDEX ip_allocation_port ON ip_allocation (port_id)",
            "CREATE TABLE router (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE TABLE floatingip (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            floating_network_id VARCHAR(64) NOT NULL,
            port_id VARCHAR(64),
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE TABLE security_group (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE TABLE security_group_rule (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            security_group_id VARCHAR(64) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE INDEX security_group_rule_group ON security_group_rule (security_group_id)",
            // A project's `default` group, created once: the key keeps it unique.
            "CREATE TABLE default_security_group (
            project_id VARCHAR(64) PRIMARY KEY,
            security_group_id VARCHAR(64) NOT NULL)",
            "CREATE TABLE subnetpool (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE TABLE address_scope (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE TABLE agent (
            id VARCHAR(64) PRIMARY KEY,
            project_id VARCHAR(64) NOT NULL,
            agent_type VARCHAR(255) NOT NULL,
            host VARCHAR(255) NOT NULL,
            attrs TEXT NOT NULL,
            revision_number BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            UNIQUE (agent_type, host))",
            // Which agent serves which network (DHCP) or router (L3).
            "CREATE TABLE agent_binding (
            agent_id VARCHAR(64) NOT NULL,
            resource_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (agent_id, resource_id))",
            "CREATE INDEX agent_binding_resource ON agent_binding (resource_id)",
            "CREATE TABLE quota (
            project_id VARCHAR(64) NOT NULL,
            resource VARCHAR(64) NOT NULL,
            hard_limit BIGINT NOT NULL,
            PRIMARY KEY (project_id, resource))",
            "CREATE TABLE tag (
            resource_id VARCHAR(64) NOT NULL,
            tag VARCHAR(255) NOT NULL,
            PRIMARY KEY (resource_id, tag))",
            // ML2 segment allocations: only allocated ids have rows.
            "CREATE TABLE ml2_vlan_allocation (
            physical_network VARCHAR(64) NOT NULL,
            vlan_id BIGINT NOT NULL,
            network_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (physical_network, vlan_id))",
            "CREATE TABLE ml2_tunnel_allocation (
            network_type VARCHAR(32) NOT NULL,
            segmentation_id BIGINT NOT NULL,
            network_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (network_type, segmentation_id))",
            "CREATE TABLE ml2_flat_allocation (
            physical_network VARCHAR(64) PRIMARY KEY,
            network_id VARCHAR(64) NOT NULL)",
        ],
    },
    Migration {
        version: 2,
        description: "a new port's MAC is checked against the others by index",
        statements: &["CREATE INDEX port_mac ON port (mac_address)"],
    },
    Migration {
        version: 3,
        description: "a host's agents are found by index (a binding, a state report), among thousands",
        statements: &["CREATE INDEX agent_host ON agent (host)"],
    },
];
