//! A table's content checksum: the sum modulo 2²⁵⁶ of SHA-256 of each row's neutral values,
//! so it does not depend on row order, and a duplicated pair of rows does not cancel out (as
//! it would under an exclusive or). The tenant column holding the tenant's own id hashes as
//! a marker, so the same rows under another tenant id sum alike.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What stands for the tenant's own id in a row's hash.
const TENANT_MARKER: &str = "\u{0}tenant";

/// A row's hash: SHA-256 of the JSON array of its neutral values, the tenant column holding
/// the tenant's own id (`tenant`: its position and the id) as the marker.
pub fn row_hash(row: &mut [Value], tenant: Option<(usize, &str)>) -> [u8; 32] {
    let own = tenant.filter(|(at, id)| row.get(*at).and_then(Value::as_str) == Some(*id));
    let saved = own.map(|(at, _)| std::mem::replace(&mut row[at], TENANT_MARKER.into()));
    let hash = Sha256::digest(Value::Array(row.to_vec()).to_string().as_bytes());
    if let (Some((at, _)), Some(value)) = (own, saved) {
        row[at] = value;
    }
    hash.into()
}

/// The rows of one table, counted and summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSum {
    pub rows: u64,
    sum: [u8; 32],
}

impl TableSum {
    /// Adds a row and returns its hash. `tenant`: the tenant column's position and the
    /// tenant's id, if the table has the column.
    pub fn add(&mut self, row: &mut [Value], tenant: Option<(usize, &str)>) -> [u8; 32] {
        let hash = row_hash(row, tenant);
        self.add_hash(&hash);
        hash
    }

    /// Adds a row by its hash ([`row_hash`]).
    pub fn add_hash(&mut self, hash: &[u8; 32]) {
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let total = u16::from(self.sum[i]) + u16::from(hash[i]) + carry;
            self.sum[i] = (total & 0xff) as u8;
            carry = total >> 8;
        }
        self.rows += 1;
    }

    /// The checksum, hex.
    pub fn checksum(&self) -> String {
        hex::encode(self.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(rows: &[&[Value]], tenant: Option<(usize, &str)>) -> TableSum {
        let mut s = TableSum::default();
        for row in rows {
            s.add(&mut row.to_vec(), tenant);
        }
        s
    }

    #[test]
    fn order_does_not_matter_but_duplicates_do() {
        let a: &[Value] = &[1.into(), "x".into()];
        let b: &[Value] = &[2.into(), Value::Null];
        assert_eq!(sum(&[a, b], None), sum(&[b, a], None));
        assert_ne!(sum(&[a, a, b], None).checksum(), sum(&[b], None).checksum());
        assert_ne!(sum(&[a], None), sum(&[b], None));
    }

    #[test]
    fn the_tenants_own_id_sums_alike_under_another_id() {
        let one: &[Value] = &["01A".into(), 5.into()];
        let two: &[Value] = &["01B".into(), 5.into()];
        assert_eq!(
            sum(&[one], Some((0, "01A"))).checksum(),
            sum(&[two], Some((0, "01B"))).checksum()
        );
        assert_ne!(
            sum(&[one], Some((0, "01A"))).checksum(),
            sum(&[two], Some((0, "01C"))).checksum()
        );
    }
}
