//! What a link's MySQL/MariaDB account can do beyond reading, from
//! `SHOW GRANTS FOR CURRENT_USER()`.
//!
//! A least-privilege account has `USAGE` globally and `SELECT` (and
//! `SHOW VIEW`) on the databases the link exposes; anything else — a write
//! privilege, `PROCESS` (other sessions' statements and values), `FILE`,
//! `SUPER`, a role, `WITH GRANT OPTION` — is one sentence for
//! `tautan check`.

/// Privileges a db link account needs.
const READING: &[&str] = &["USAGE", "SELECT", "SHOW VIEW"];

/// One sentence per grant line giving more than reading.
pub fn excess(grants: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in grants {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privileges, object)) = rest.split_once(" ON ") else {
            // `GRANT role TO user`: a role's privileges come with it.
            let role = rest.split(" TO ").next().unwrap_or(rest);
            out.push(format!(
                "the account has the role {role} (check what it grants)"
            ));
            continue;
        };
        let object = object.split(" TO ").next().unwrap_or(object);
        let extra: Vec<String> = split_top_level(privileges)
            .into_iter()
            .map(|p| {
                let name = p
                    .split('(')
                    .next()
                    .unwrap_or(&p)
                    .trim()
                    .to_ascii_uppercase();
                name
            })
            .filter(|p| !READING.contains(&p.as_str()))
            .collect();
        if !extra.is_empty() {
            out.push(format!("the account has {} on {object}", extra.join(", ")));
        }
        if line.contains("WITH GRANT OPTION") {
            out.push(format!(
                "the account may grant its privileges on {object} to others"
            ));
        }
    }
    out
}

/// `a, b (x, y), c` → `["a", "b (x, y)", "c"]`.
fn split_top_level(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_grants_are_enough_everything_else_is_named() {
        let least = [
            "GRANT USAGE ON *.* TO `tautan_ro`@`localhost` IDENTIFIED BY PASSWORD '*AB'"
                .to_string(),
            "GRANT SELECT, SHOW VIEW ON `kesehatan`.* TO `tautan_ro`@`localhost`".to_string(),
            "GRANT SELECT (`id`, `nama`) ON `kepegawaian`.`pegawai` TO `tautan_ro`@`localhost`"
                .to_string(),
        ];
        assert!(excess(&least).is_empty());
        let more = [
            "GRANT PROCESS, FILE ON *.* TO `x`@`%`".to_string(),
            "GRANT SELECT, INSERT, UPDATE (`a`, `b`) ON `db`.* TO `x`@`%` WITH GRANT OPTION"
                .to_string(),
            "GRANT `admin` TO `x`@`%`".to_string(),
        ];
        assert_eq!(
            excess(&more),
            vec![
                "the account has PROCESS, FILE on *.*",
                "the account has INSERT, UPDATE on `db`.*",
                "the account may grant its privileges on `db`.* to others",
                "the account has the role `admin` (check what it grants)",
            ]
        );
    }
}
