//! An endpoint as a DataFusion table: key filters become query
//! parameters, pages are fetched as the plan reads them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use reqwest::Url;
use tautan_connector::LinkError;

use crate::endpoint::Endpoint;
use crate::fetch::HttpLink;
use crate::page;

/// One endpoint of a web-service link, as a table.
#[derive(Debug)]
pub struct HttpTable {
    link: Arc<HttpLink>,
    endpoint: Arc<Endpoint>,
    schema: SchemaRef,
}

impl HttpTable {
    /// The table for `endpoint` of `link`, with columns `schema` (declared,
    /// or inferred with [`infer_schema`]).
    pub fn new(link: Arc<HttpLink>, endpoint: Endpoint, schema: SchemaRef) -> Self {
        HttpTable {
            link,
            endpoint: Arc::new(endpoint),
            schema,
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// The columns of `endpoint`: declared, or else inferred from its first
/// page (JSON only: every column a CSV endpoint has must be declared).
pub async fn infer_schema(link: &HttpLink, endpoint: &Endpoint) -> Result<SchemaRef, LinkError> {
    let config = |m: String| {
        link.error(
            tautan_connector::LinkErrorKind::Config,
            format!("table {}: {m}", endpoint.name),
        )
    };
    if let Some(schema) = endpoint.declared_schema().map_err(config)? {
        return Ok(schema);
    }
    if endpoint.format == crate::endpoint::Format::Csv {
        return Err(config("a CSV endpoint needs its columns declared".into()));
    }
    let url = page::first_url(link, endpoint, &[])?;
    let answer = link.get(&url, &mut link.budget()).await?;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
        link.error(
            tautan_connector::LinkErrorKind::Conversion,
            format!("{}: not JSON: {e}", endpoint.name),
        )
    })?;
    let records = page::records(&json, &endpoint.records).map_err(config)?;
    let inferred =
        datafusion::arrow::json::reader::infer_json_schema_from_iterator(records.iter().map(Ok))
            .map_err(|e| config(format!("cannot infer columns: {e}")))?;
    // Only the types a declaration can name: what `tautan check` prints
    // must read back as the same table.
    let fields: Vec<_> = inferred
        .fields()
        .iter()
        .map(|f| {
            let ty = crate::endpoint::type_name(f.data_type());
            let data_type = crate::endpoint::data_type(ty).unwrap_or(f.data_type().clone());
            datafusion::arrow::datatypes::Field::new(f.name(), data_type, true)
        })
        .collect();
    Ok(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)))
}

/// `col = literal` on one of `keys`: the key and the literal as the
/// service reads it in a query string.
fn key_filter(expr: &Expr, keys: &[String]) -> Option<(String, String)> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = expr
    else {
        return None;
    };
    let (column, value) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
        _ => return None,
    };
    if !keys.contains(&column.name) {
        return None;
    }
    let text = match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Int8(Some(_))
        | ScalarValue::Int16(Some(_))
        | ScalarValue::Int32(Some(_))
        | ScalarValue::Int64(Some(_))
        | ScalarValue::UInt8(Some(_))
        | ScalarValue::UInt16(Some(_))
        | ScalarValue::UInt32(Some(_))
        | ScalarValue::UInt64(Some(_))
        | ScalarValue::Boolean(Some(_))
        | ScalarValue::Date32(Some(_)) => value.to_string(),
        _ => return None,
    };
    Some((column.name.clone(), text))
}

#[async_trait]
impl TableProvider for HttpTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Key equalities are sent to the service and checked again in tautan
    /// (a service's filter is not trusted to be exact); nothing else is
    /// sent.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match key_filter(f, &self.endpoint.keys) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for f in filters {
            if let Some((k, v)) = key_filter(f, &self.endpoint.keys) {
                // Two different values for one key match no row; sending
                // the first is still right (tautan filters again).
                if !keys.iter().any(|(have, _)| *have == k) {
                    keys.push((k, v));
                }
            }
        }
        let first = page::first_url(&self.link, &self.endpoint, &keys)?;
        let pages = Pages {
            link: self.link.clone(),
            endpoint: self.endpoint.clone(),
            schema: self.schema.clone(),
            first,
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            self.schema.clone(),
            vec![Arc::new(pages)],
            projection,
            vec![],
            false,
            limit,
        )?))
    }
}

/// The pages of one scan, fetched one after another as they are read.
#[derive(Debug)]
struct Pages {
    link: Arc<HttpLink>,
    endpoint: Arc<Endpoint>,
    schema: SchemaRef,
    first: Url,
}

impl PartitionStream for Pages {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (link, endpoint, schema) = (
            self.link.clone(),
            self.endpoint.clone(),
            self.schema.clone(),
        );
        let budget = link.budget();
        let state = Some((self.first.clone(), budget));
        let stream = futures::stream::try_unfold(state, move |state| {
            let (link, endpoint, schema) = (link.clone(), endpoint.clone(), schema.clone());
            async move {
                let Some((url, mut budget)) = state else {
                    return Ok(None);
                };
                let answer = link.get(&url, &mut budget).await?;
                let page = page::decode(&link, &endpoint, &schema, &answer.body)?;
                let next = page::next_url(&link, &endpoint, &url, &answer.headers, &page)?;
                Ok::<_, LinkError>(Some((page.batch, next.map(|n| (n, budget)))))
            }
        })
        .map(|r| r.map_err(DataFusionError::from));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// What `tautan check` reports of one endpoint: its first page read and
/// decoded, and its columns as a declaration to pin.
#[derive(Debug)]
pub struct Probe {
    /// Rows on the first page.
    pub rows: usize,
    /// The columns as `"name type"`, as `columns = [...]` takes them.
    pub columns: Vec<String>,
}

/// Reads and decodes the first page of `endpoint`.
pub async fn probe(link: &HttpLink, endpoint: &Endpoint) -> Result<Probe, LinkError> {
    let schema = infer_schema(link, endpoint).await?;
    let url = page::first_url(link, endpoint, &[])?;
    let answer = link.get(&url, &mut link.budget()).await?;
    let page = page::decode(link, endpoint, &schema, &answer.body)?;
    let columns = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            datafusion::arrow::datatypes::DataType::Decimal128(p, s) => {
                format!("{} numeric({p},{s})", f.name())
            }
            t => format!("{} {}", f.name(), crate::endpoint::type_name(t)),
        })
        .collect();
    Ok(Probe {
        rows: page.batch.num_rows(),
        columns,
    })
}
