//! The image database: images as records (`db::records`), and who else may see a
//! shared image.

use db::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "image schema",
    statements: &[
        db::record_table!("image"),
        "CREATE INDEX image_owner ON image (project_id)",
        "CREATE TABLE image_member (
            image_id VARCHAR(64) NOT NULL,
            member VARCHAR(255) NOT NULL,
            status VARCHAR(20) NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (image_id, member))",
        "CREATE INDEX image_member_member ON image_member (member)",
    ],
}];
