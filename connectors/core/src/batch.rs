//! Rows decoded one value at a time into Arrow batches of a fixed schema:
//! the part every row-by-row link (MySQL, SQL Server) shares. Each link
//! writes a value into its column's builder; [`BatchBuilder`] makes the
//! batches.

use std::sync::Arc;

use datafusion::arrow::array::{make_builder, ArrayBuilder, ArrayRef, Decimal128Array};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::types::BATCH_ROWS;
use crate::{LinkError, LinkErrorKind};

/// One builder per column of `schema`, emptied into a batch every
/// [`BATCH_ROWS`] rows.
pub struct BatchBuilder {
    link: String,
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
}

impl BatchBuilder {
    /// Builders for `schema`; every column's type must be one `supported`
    /// says the link's decoder writes (an error naming the column if not).
    pub fn new(
        link: &str,
        schema: SchemaRef,
        supported: fn(&DataType) -> bool,
    ) -> Result<Self, LinkError> {
        if let Some(f) = schema.fields().iter().find(|f| !supported(f.data_type())) {
            return Err(LinkError::new(
                link,
                LinkErrorKind::Conversion,
                format!("no decoder for column {} ({})", f.name(), f.data_type()),
            ));
        }
        let builders = schema
            .fields()
            .iter()
            .map(|f| make_builder(f.data_type(), BATCH_ROWS))
            .collect();
        Ok(Self {
            link: link.to_string(),
            schema,
            builders,
            rows: 0,
        })
    }

    /// The link's name, for errors.
    pub fn link(&self) -> &str {
        &self.link
    }

    /// How many columns a row has.
    pub fn width(&self) -> usize {
        self.builders.len()
    }

    /// Column `i`'s field and builder, to write the row's value into.
    /// `None` past the last column.
    pub fn column(&mut self, i: usize) -> Option<(&Field, &mut dyn ArrayBuilder)> {
        let field = self.schema.fields().get(i)?;
        let builder = self.builders.get_mut(i)?;
        Some((field.as_ref(), builder.as_mut()))
    }

    /// An error converting column `field`'s value, as the link reports it.
    pub fn conversion_error(&self, field: &str, why: impl std::fmt::Display) -> LinkError {
        LinkError::new(
            &self.link,
            LinkErrorKind::Conversion,
            format!("column {field}: {why}"),
        )
    }

    /// Ends a row whose every column was written; a batch when one is full.
    pub fn end_row(&mut self) -> Result<Option<RecordBatch>, LinkError> {
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            return self.flush().map(Some);
        }
        Ok(None)
    }

    /// The last, partial batch, if any rows remain.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, LinkError> {
        if self.rows == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }

    fn flush(&mut self) -> Result<RecordBatch, LinkError> {
        let error = |e: &dyn std::fmt::Display| {
            LinkError::new(&self.link, LinkErrorKind::Conversion, e.to_string())
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.builders.len());
        for (b, f) in self.builders.iter_mut().zip(self.schema.fields()) {
            let array = b.finish();
            // A decimal array takes the field's precision and scale,
            // whatever its builder was made with.
            let array = match f.data_type() {
                DataType::Decimal128(p, s) => {
                    let decimals = array
                        .as_any()
                        .downcast_ref::<Decimal128Array>()
                        .ok_or_else(|| error(&"a decimal column's builder is not a decimal one"))?
                        .clone()
                        .with_precision_and_scale(*p, *s)
                        .map_err(|e| error(&e))?;
                    Arc::new(decimals) as ArrayRef
                }
                _ => array,
            };
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| error(&e))
    }
}
