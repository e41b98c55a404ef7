//! What must never be handed out twice: IP addresses (per subnet), VLAN ids (per
//! physical network), tunnel ids (per type) and flat physical networks. Each is a
//! row whose primary key makes a second, concurrent allocation fail; callers
//! allocate inside a write transaction and treat that failure as "taken".

use db::{AnyConnection, AnyRow, DbError, RowExt};

use super::Store;
use crate::error::{NetworkError, Result};

/// One segment of a network: how ML2 realises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: String,
    pub network_id: String,
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
}

fn segment_from_row(row: &AnyRow) -> Result<Segment, DbError> {
    Ok(Segment {
        id: row.str("id")?,
        network_id: row.str("network_id")?,
        network_type: row.str("network_type")?,
        physical_network: row.opt_str("physical_network")?,
        segmentation_id: row.opt_int("segmentation_id")?,
    })
}

/// (subnet id, address, port id)
pub type IpRow = (String, String, String);

impl Store {
    pub async fn add_segment(&self, conn: &mut AnyConnection, s: &Segment, index: i64) -> Result<()> {
        self.db
            .q("INSERT INTO network_segment (id, network_id, network_type, physical_network, segmentation_id, segment_index)
                VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&s.id)
            .bind(&s.network_id)
            .bind(&s.network_type)
            .bind(s.physical_network.as_deref())
            .bind(s.segmentation_id)
            .bind(index)
            .execute(conn)
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn segments_in(&self, conn: &mut AnyConnection, network_id: &str) -> Result<Vec<Segment>> {
        let rows = self
            .db
            .q("SELECT * FROM network_segment WHERE network_id = ? ORDER BY segment_index")
            .bind(network_id)
            .fetch_all(conn)
            .await
            .map_err(DbError::from)?;
        Ok(rows.iter().map(segment_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn segments(&self, network_id: &str) -> Result<Vec<Segment>> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        self.segments_in(&mut conn, network_id).await
    }

    pub async fn all_segments(&self) -> Result<Vec<Segment>> {
        let rows =
            self.db.fetch_all(self.db.q("SELECT * FROM network_segment ORDER BY network_id, segment_index")).await?;
        Ok(rows.iter().map(segment_from_row).collect::<Result<_, _>>()?)
    }

    /// Removes a network's segments and releases what they held.
    pub async fn release_segments(&self, conn: &mut AnyConnection, network_id: &str) -> Result<()> {
        for sql in [
            "DELETE FROM ml2_vlan_allocation WHERE network_id = ?",
            "DELETE FROM ml2_tunnel_allocation WHERE network_id = ?",
            "DELETE FROM ml2_flat_allocation WHERE network_id = ?",
            "DELETE FROM network_segment WHERE network_id = ?",
        ] {
            self.db.q(sql).bind(network_id).execute(&mut *conn).await.map_err(DbError::from)?;
        }
        Ok(())
    }

    /// The segmentation ids in use for `network_type` (on `physical_network`
    /// for VLANs).
    pub async fn taken_ids(
        &self,
        conn: &mut AnyConnection,
        network_type: &str,
        physical_network: Option<&str>,
    ) -> Result<Vec<i64>> {
        let rows = if network_type == "vlan" {
            self.db
                .q("SELECT vlan_id AS id FROM ml2_vlan_allocation WHERE physical_network = ?")
                .bind(physical_network.unwrap_or_default())
                .fetch_all(conn)
                .await
        } else {
            self.db
                .q("SELECT segmentation_id AS id FROM ml2_tunnel_allocation WHERE network_type = ?")
                .bind(network_type)
                .fetch_all(conn)
                .await
        }
        .map_err(DbError::from)?;
        Ok(rows.iter().map(|r| r.int("id")).collect::<Result<_, _>>()?)
    }

    /// Claims a segmentation id; `Conflict` if someone holds it.
    pub async fn claim_id(
        &self,
        conn: &mut AnyConnection,
        network_type: &str,
        physical_network: Option<&str>,
        id: i64,
        network_id: &str,
    ) -> Result<()> {
        let q = if network_type == "vlan" {
            self.db
                .q("INSERT INTO ml2_vlan_allocation (physical_network, vlan_id, network_id) VALUES (?, ?, ?)")
                .bind(physical_network.unwrap_or_default())
                .bind(id)
                .bind(network_id)
        } else {
            self.db
                .q("INSERT INTO ml2_tunnel_allocation (network_type, segmentation_id, network_id) VALUES (?, ?, ?)")
                .bind(network_type)
                .bind(id)
                .bind(network_id)
        };
        match q.execute(conn).await.map_err(DbError::from) {
            Ok(_) => Ok(()),
            Err(e) if e.is_unique_violation() => Err(NetworkError::conflict(
                if network_type == "vlan" { "VlanIdInUse" } else { "TunnelIdInUse" },
                match physical_network {
                    Some(p) => {
                        format!("Unable to create the network. The VLAN {id} on physical network {p} is in use.")
                    }
                    None => format!("Unable to create the network. The tunnel ID {id} is in use."),
                },
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims a flat physical network; `Conflict` if a network already uses it.
    pub async fn claim_flat(&self, conn: &mut AnyConnection, physical_network: &str, network_id: &str) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO ml2_flat_allocation (physical_network, network_id) VALUES (?, ?)")
            .bind(physical_network)
            .bind(network_id);
        match q.execute(conn).await.map_err(DbError::from) {
            Ok(_) => Ok(()),
            Err(e) if e.is_unique_violation() => Err(NetworkError::conflict(
                "FlatNetworkInUse",
                format!("Unable to create the flat network. Physical network {physical_network} is in use."),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Records that `port_id` holds `ip` on `subnet_id`; `Conflict` if taken.
    pub async fn claim_ip(
        &self,
        conn: &mut AnyConnection,
        network_id: &str,
        subnet_id: &str,
        ip: &str,
        port_id: &str,
    ) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO ip_allocation (subnet_id, ip_address, network_id, port_id) VALUES (?, ?, ?, ?)")
            .bind(subnet_id)
            .bind(ip)
            .bind(network_id)
            .bind(port_id);
        match q.execute(conn).await.map_err(DbError::from) {
            Ok(_) => Ok(()),
            Err(e) if e.is_unique_violation() => Err(NetworkError::conflict(
                "IpAddressAlreadyAllocated",
                format!("IP address {ip} already allocated in subnet {subnet_id}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The addresses in use on a subnet.
    pub async fn ips_of_subnet(&self, conn: &mut AnyConnection, subnet_id: &str) -> Result<Vec<IpRow>> {
        let rows = self
            .db
            .q("SELECT subnet_id, ip_address, port_id FROM ip_allocation WHERE subnet_id = ?")
            .bind(subnet_id)
            .fetch_all(conn)
            .await
            .map_err(DbError::from)?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.str("subnet_id")?, r.str("ip_address")?, r.str("port_id")?)))
            .collect::<Result<_, DbError>>()?)
    }

    pub async fn release_ip(&self, conn: &mut AnyConnection, subnet_id: &str, ip: &str) -> Result<()> {
        self.db
            .q("DELETE FROM ip_allocation WHERE subnet_id = ? AND ip_address = ?")
            .bind(subnet_id)
            .bind(ip)
            .execute(conn)
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn release_port_ips(&self, conn: &mut AnyConnection, port_id: &str) -> Result<()> {
        self.db
            .q("DELETE FROM ip_allocation WHERE port_id = ?")
            .bind(port_id)
            .execute(conn)
            .await
            .map_err(DbError::from)?;
        Ok(())
    }
}
