//! The identity database. Domains are rows of `project` with `is_domain = 1`, as in
//! Keystone, so a project's `domain_id` and `parent_id` point into one table.
//! Tables avoid the names `user` and `group`, which MariaDB and PostgreSQL reserve;
//! the columns `blob` and `sensitive`, reserved in MariaDB, are written quoted.

use db::Migration;

/// The `domain_id` of a domain row: domains have no domain.
pub const ROOT_DOMAIN: &str = "<<keystone.domain.root>>";
/// The `domain_id` of a global (not domain-specific) role.
pub const NULL_DOMAIN: &str = "<<null>>";

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "identity schema",
    statements: &[
        "CREATE TABLE project (
            id VARCHAR(64) PRIMARY KEY,
            name VARCHAR(64) NOT NULL,
            domain_id VARCHAR(64) NOT NULL,
            parent_id VARCHAR(64),
            is_domain BIGINT NOT NULL,
            enabled BIGINT NOT NULL,
            description TEXT,
            extra TEXT NOT NULL,
            options TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE (domain_id, name))",
        "CREATE INDEX project_parent ON project (parent_id)",
        "CREATE TABLE project_tag (
            project_id VARCHAR(64) NOT NULL,
            name VARCHAR(255) NOT NULL,
            PRIMARY KEY (project_id, name))",
        "CREATE TABLE identity_user (
            id VARCHAR(64) PRIMARY KEY,
            domain_id VARCHAR(64) NOT NULL,
            name VARCHAR(255) NOT NULL,
            enabled BIGINT NOT NULL,
            default_project_id VARCHAR(64),
            password_hash VARCHAR(255),
            password_created_at BIGINT,
            extra TEXT NOT NULL,
            options TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE (domain_id, name))",
        "CREATE TABLE identity_group (
            id VARCHAR(64) PRIMARY KEY,
            domain_id VARCHAR(64) NOT NULL,
            name VARCHAR(64) NOT NULL,
            description TEXT,
            extra TEXT NOT NULL,
            UNIQUE (domain_id, name))",
        "CREATE TABLE user_group_membership (
            user_id VARCHAR(64) NOT NULL,
            group_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (user_id, group_id))",
        "CREATE INDEX membership_group ON user_group_membership (group_id)",
        "CREATE TABLE role (
            id VARCHAR(64) PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            domain_id VARCHAR(64) NOT NULL,
            description TEXT,
            extra TEXT NOT NULL,
            options TEXT NOT NULL,
            UNIQUE (name, domain_id))",
        "CREATE TABLE implied_role (
            prior_role_id VARCHAR(64) NOT NULL,
            implied_role_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (prior_role_id, implied_role_id))",
        // type: UserProject, GroupProject, UserDomain, GroupDomain, UserSystem,
        // GroupSystem; target_id is 'system' for the system.
        "CREATE TABLE assignment (
            type VARCHAR(16) NOT NULL,
            actor_id VARCHAR(64) NOT NULL,
            target_id VARCHAR(64) NOT NULL,
            role_id VARCHAR(64) NOT NULL,
            inherited BIGINT NOT NULL,
            PRIMARY KEY (type, actor_id, target_id, role_id, inherited))",
        "CREATE INDEX assignment_actor ON assignment (actor_id)",
        "CREATE INDEX assignment_target ON assignment (target_id)",
        "CREATE TABLE region (
            id VARCHAR(255) PRIMARY KEY,
            description TEXT NOT NULL,
            parent_region_id VARCHAR(255),
            extra TEXT NOT NULL)",
        "CREATE TABLE service (
            id VARCHAR(64) PRIMARY KEY,
            type VARCHAR(255) NOT NULL,
            enabled BIGINT NOT NULL,
            extra TEXT NOT NULL)",
        "CREATE TABLE endpoint (
            id VARCHAR(64) PRIMARY KEY,
            service_id VARCHAR(64) NOT NULL,
            interface VARCHAR(8) NOT NULL,
            url TEXT NOT NULL,
            region_id VARCHAR(255),
            enabled BIGINT NOT NULL,
            extra TEXT NOT NULL)",
        "CREATE TABLE endpoint_group (
            id VARCHAR(64) PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            description TEXT,
            filters TEXT NOT NULL)",
        "CREATE TABLE project_endpoint (
            endpoint_id VARCHAR(64) NOT NULL,
            project_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (endpoint_id, project_id))",
        "CREATE TABLE project_endpoint_group (
            endpoint_group_id VARCHAR(64) NOT NULL,
            project_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (endpoint_group_id, project_id))",
        "CREATE TABLE application_credential (
            id VARCHAR(64) PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            secret_hash VARCHAR(255) NOT NULL,
            description TEXT,
            user_id VARCHAR(64) NOT NULL,
            project_id VARCHAR(64),
            system VARCHAR(64),
            expires_at BIGINT,
            unrestricted BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE (user_id, name))",
        "CREATE TABLE application_credential_role (
            application_credential_id VARCHAR(64) NOT NULL,
            role_id VARCHAR(64) NOT NULL,
            PRIMARY KEY (application_credential_id, role_id))",
        // A token issued before `issued_before` that matches every set column is dead.
        "CREATE TABLE revocation_event (
            id VARCHAR(64) PRIMARY KEY,
            user_id VARCHAR(64),
            project_id VARCHAR(64),
            domain_id VARCHAR(64),
            audit_id VARCHAR(64),
            issued_before BIGINT NOT NULL,
            revoked_at BIGINT NOT NULL)",
        "CREATE INDEX revocation_revoked_at ON revocation_event (revoked_at)",
        "CREATE TABLE credential (
            id VARCHAR(64) PRIMARY KEY,
            user_id VARCHAR(64) NOT NULL,
            project_id VARCHAR(64),
            type VARCHAR(255) NOT NULL,
            encrypted_blob TEXT NOT NULL,
            extra TEXT NOT NULL)",
        "CREATE INDEX credential_user ON credential (user_id)",
        "CREATE TABLE policy (
            id VARCHAR(64) PRIMARY KEY,
            type VARCHAR(255) NOT NULL,
            \"blob\" TEXT NOT NULL,
            extra TEXT NOT NULL)",
        // Domain-specific driver settings; `value` is JSON so types survive.
        "CREATE TABLE domain_config (
            domain_id VARCHAR(64) NOT NULL,
            group_name VARCHAR(255) NOT NULL,
            option_name VARCHAR(255) NOT NULL,
            value TEXT NOT NULL,
            \"sensitive\" BIGINT NOT NULL,
            PRIMARY KEY (domain_id, group_name, option_name))",
        // OS-OAUTH1 consumers.
        "CREATE TABLE consumer (
            id VARCHAR(64) PRIMARY KEY,
            description TEXT,
            secret_hash VARCHAR(255) NOT NULL,
            extra TEXT NOT NULL)",
    ],
}];
