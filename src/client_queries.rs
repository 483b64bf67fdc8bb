//! Client queries DataFusion cannot plan, answered by equivalent ones it can.
//!
//! Some drivers send one fixed catalog query before they can read a type,
//! written with PostgreSQL features DataFusion's planner lacks. Where such a
//! query only reads tautan's own catalog, it is recognized by its shape (not
//! by its text, which differs between driver versions) and replaced by a
//! query giving the same rows over tautan's catalog, written for DataFusion.
//! The same idea as `datafusion-pg-catalog`'s own replacement list, which
//! has no way to add entries from outside.
//!
//! | driver | query | what DataFusion lacks |
//! |---|---|---|
//! | asyncpg (every version since 0.18) | type introspection (`WITH RECURSIVE typeinfo_tree ...`), before it decodes or binds arrays, composites, domains, ranges | correlated scalar subqueries inside `CASE`, a recursive CTE inside a subquery |
//!
//! What makes the answer equal here: tautan's catalog has no domains over
//! domains (a domain's base type is one step away), and a composite type's
//! attributes are those of the relation whose row type it is. What differs:
//! column types asyncpg must decode before it knows any others are ones it
//! knows (`attrtypoids` as `text[]`, never `int8[]`).

use std::ops::ControlFlow;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr, SetExpr, Statement, Value};

/// The columns of asyncpg's `typeinfo_tree` CTE, in order.
const ASYNCPG_TYPEINFO_COLUMNS: [&str; 11] = [
    "oid",
    "ns",
    "name",
    "kind",
    "basetype",
    "elemtype",
    "elemdelim",
    "range_subtype",
    "attrtypoids",
    "attrnames",
    "depth",
];

/// asyncpg's type introspection over tautan's catalog: for the type OIDs in
/// `$1`, each type with the types it is made of (array elements, composite
/// attributes, range subtypes, domain bases), deepest first.
const ASYNCPG_TYPEINFO: &str = "
WITH RECURSIVE typeinfo AS (
    SELECT
        t.oid AS oid,
        ns.nspname AS ns,
        t.typname AS name,
        t.typtype AS kind,
        CASE WHEN t.typtype = 'd' THEN t.typbasetype END AS basetype,
        t.typelem AS elemtype,
        elem_t.typdelim AS elemdelim,
        range_t.rngsubtype AS range_subtype,
        -- As text[]: asyncpg decodes only text[] and oid[] before it has
        -- introspected anything, and tautan sends OIDs as int8. (Always
        -- NULL today: no relation of tautan's catalog has a row type.)
        CAST(comp.attrtypoids AS VARCHAR[]) AS attrtypoids,
        comp.attrnames AS attrnames
    FROM pg_catalog.pg_type AS t
    JOIN pg_catalog.pg_namespace AS ns ON ns.oid = t.typnamespace
    LEFT JOIN pg_catalog.pg_type AS elem_t
        ON t.typlen = -1 AND t.typelem <> 0 AND t.typelem = elem_t.oid
    LEFT JOIN pg_catalog.pg_range AS range_t ON t.oid = range_t.rngtypid
    LEFT JOIN (
        SELECT
            c.reltype AS reltype,
            array_agg(ia.atttypid ORDER BY ia.attnum) AS attrtypoids,
            array_agg(CAST(ia.attname AS text) ORDER BY ia.attnum) AS attrnames
        FROM pg_catalog.pg_attribute AS ia
        JOIN pg_catalog.pg_class AS c ON ia.attrelid = c.oid
        WHERE ia.attnum > 0 AND NOT ia.attisdropped
        GROUP BY c.reltype
    ) AS comp ON t.typtype = 'c' AND comp.reltype = t.oid
),
typeinfo_tree(
    oid, ns, name, kind, basetype, elemtype, elemdelim,
    range_subtype, attrtypoids, attrnames, depth) AS (
    SELECT
        ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim,
        ti.range_subtype, ti.attrtypoids, ti.attrnames, 0
    FROM typeinfo AS ti
    WHERE ti.oid = any($1::oid[])
    UNION ALL
    SELECT
        ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim,
        ti.range_subtype, ti.attrtypoids, ti.attrnames, tt.depth + 1
    FROM typeinfo AS ti, typeinfo_tree AS tt
    WHERE (tt.elemtype IS NOT NULL AND tt.elemtype <> 0 AND ti.oid = tt.elemtype)
        OR (tt.attrtypoids IS NOT NULL AND ti.oid = any(tt.attrtypoids))
        OR (tt.range_subtype IS NOT NULL AND ti.oid = tt.range_subtype)
        OR (tt.basetype IS NOT NULL AND ti.oid = tt.basetype)
)
SELECT DISTINCT
    *,
    format_type(basetype, NULL) AS basetype_name,
    CASE WHEN elemtype = 0 THEN '-' ELSE format_type(elemtype, NULL) END AS elemtype_name,
    format_type(range_subtype, NULL) AS range_subtype_name
FROM typeinfo_tree
ORDER BY depth DESC
";

/// The parameter types announced for a planned equivalent, where they
/// must be other than the ones inferred: asyncpg binds its list of type
/// OIDs as `oid[]` (the one integer array it can encode before it has
/// introspected anything), while tautan's OIDs are `int4`.
pub fn parameter_types(plan: &LogicalPlan) -> Option<Vec<postgres_types::Type>> {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::RecursiveQuery(r) = node {
            if r.name == "typeinfo_tree" {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found.then(|| vec![postgres_types::Type::OID_ARRAY])
}

/// The equivalent of `statements`, when they are one known client query.
pub fn equivalent(statements: &[DFStatement]) -> Option<&'static str> {
    let [DFStatement::Statement(statement)] = statements else {
        return None;
    };
    is_asyncpg_typeinfo(statement).then_some(ASYNCPG_TYPEINFO)
}

/// asyncpg's introspection: `WITH RECURSIVE typeinfo_tree(<its 11
/// columns>) AS (...) SELECT DISTINCT ... FROM typeinfo_tree ...`, with one
/// parameter (the type OIDs).
fn is_asyncpg_typeinfo(statement: &Statement) -> bool {
    let Statement::Query(query) = statement else {
        return false;
    };
    let Some(with) = &query.with else {
        return false;
    };
    let [cte] = with.cte_tables.as_slice() else {
        return false;
    };
    let columns: Vec<String> = cte
        .alias
        .columns
        .iter()
        .map(|c| c.name.value.to_ascii_lowercase())
        .collect();
    let shaped = with.recursive
        && cte.alias.name.value.eq_ignore_ascii_case("typeinfo_tree")
        && columns == ASYNCPG_TYPEINFO_COLUMNS
        && matches!(query.body.as_ref(), SetExpr::Select(s)
            if s.distinct.is_some() && s.from.len() == 1
                && s.from[0].relation.to_string().eq_ignore_ascii_case("typeinfo_tree"));
    shaped && parameters(statement) == ["$1"]
}

/// The distinct placeholders of `statement`.
fn parameters(statement: &Statement) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let _ = visit_expressions(statement, |e| {
        if let Expr::Value(v) = e {
            if let Value::Placeholder(p) = &v.value {
                if !found.contains(p) {
                    found.push(p.clone());
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Vec<DFStatement> {
        datafusion::sql::parser::DFParser::parse_sql(sql)
            .expect("parses")
            .into_iter()
            .collect()
    }

    #[test]
    fn the_replacement_is_not_itself_replaced_and_other_queries_stay() {
        assert!(equivalent(&parse(ASYNCPG_TYPEINFO)).is_none());
        for sql in [
            "SELECT 1",
            "WITH RECURSIVE typeinfo_tree(a) AS (SELECT 1) SELECT DISTINCT * FROM typeinfo_tree",
            "WITH RECURSIVE t(oid, ns, name, kind, basetype, elemtype, elemdelim, range_subtype, \
             attrtypoids, attrnames, depth) AS (SELECT $1) SELECT DISTINCT * FROM t",
        ] {
            assert!(equivalent(&parse(sql)).is_none(), "{sql}");
        }
    }

    #[test]
    fn a_query_of_asyncpg_shape_is_recognized() {
        let sql = "WITH RECURSIVE typeinfo_tree(oid, ns, name, kind, basetype, elemtype, \
                   elemdelim, range_subtype, attrtypoids, attrnames, depth) AS ( \
                   SELECT 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0 FROM pg_type WHERE oid = any($1::oid[]) \
                   UNION ALL SELECT 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, tt.depth + 1 \
                   FROM pg_type ti, typeinfo_tree tt WHERE ti.oid = tt.elemtype) \
                   SELECT DISTINCT *, basetype::regtype::text AS basetype_name \
                   FROM typeinfo_tree ORDER BY depth DESC";
        assert_eq!(equivalent(&parse(sql)), Some(ASYNCPG_TYPEINFO));
    }
}
