//! What a link's SQL Server login can do beyond reading.
//!
//! SQL Server has no read-only session on a primary replica, so the link
//! relies on the login: a least-privilege one is a database user with
//! `SELECT` (e.g. `db_datareader`) and nothing else. `tautan check` asks
//! the server (`IS_SRVROLEMEMBER`, `IS_ROLEMEMBER`, `HAS_PERMS_BY_NAME` on
//! the database) and prints one sentence per finding.

/// What the server said about the login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Member of the `sysadmin` server role.
    pub sysadmin: bool,
    /// Writing database roles it is a member of (`db_owner`,
    /// `db_datawriter`, `db_ddladmin`).
    pub roles: Vec<&'static str>,
    /// Database-wide permissions beyond reading it holds (`INSERT`,
    /// `UPDATE`, `DELETE`, `ALTER`, `EXECUTE`, `CREATE TABLE`).
    pub permissions: Vec<&'static str>,
}

/// One sentence per way the login can do more than read.
pub fn excess(facts: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    if facts.sysadmin {
        out.push("the login is a member of sysadmin (it can do anything on the server)".into());
    }
    for role in &facts.roles {
        out.push(format!("the database user is a member of {role}"));
    }
    if !facts.permissions.is_empty() {
        out.push(format!(
            "the account has {} on the database",
            facts.permissions.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_is_quiet_and_a_writer_is_named() {
        assert!(excess(&Facts::default()).is_empty());
        let writer = Facts {
            sysadmin: true,
            roles: vec!["db_datawriter"],
            permissions: vec!["INSERT", "EXECUTE"],
        };
        assert_eq!(
            excess(&writer),
            vec![
                "the login is a member of sysadmin (it can do anything on the server)",
                "the database user is a member of db_datawriter",
                "the account has INSERT, EXECUTE on the database",
            ]
        );
    }
}
