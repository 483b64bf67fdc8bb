//! Structured-file links: a folder of CSV, Parquet or JSON exports from an
//! agency that has no db link yet, and the custodian's reference files.
//!
//! Everything here goes through DataFusion's own listing tables and file
//! formats: tautan adds the mapping from a folder to table names, and exact
//! CSV column types.
//!
//! * each file `name.csv` / `name.parquet` / `name.json` directly in the
//!   folder becomes table `name`;
//! * each sub-folder becomes one table over all the files in it (an export
//!   split into parts), with the format of its first file.
//!
//! CSV column types are DataFusion's inference over every row, refined so
//! that no value loses its text (`csv_types`).

mod csv_types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::runtime::SpawnedTask;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};

/// The file formats a file link reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON.
    Json,
}

impl FileKind {
    /// The kind for a file extension, if it is one tautan reads.
    pub fn from_path(path: &Path) -> Option<FileKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileKind::Csv),
            "parquet" => Some(FileKind::Parquet),
            "json" | "ndjson" | "jsonl" => Some(FileKind::Json),
            _ => None,
        }
    }

    fn extension(&self, path: &Path) -> String {
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default()
    }

    /// DataFusion's format; `delimiter` is a CSV file's (see
    /// [`csv_types::delimiter`]).
    fn format(&self, delimiter: u8) -> Arc<dyn FileFormat> {
        match self {
            // Every row is read for the types (not DataFusion's first 1000,
            // here and for JSON): a text value on row 5000 of a number column
            // would otherwise make every query of the table fail.
            FileKind::Csv => Arc::new(
                CsvFormat::default()
                    .with_has_header(true)
                    .with_delimiter(delimiter)
                    .with_schema_infer_max_rec(usize::MAX),
            ),
            FileKind::Parquet => Arc::new(ParquetFormat::default()),
            FileKind::Json => Arc::new(JsonFormat::default().with_schema_infer_max_rec(usize::MAX)),
        }
    }
}

/// One table found in a folder.
#[derive(Debug)]
pub struct FileTable {
    /// Table name (file stem or sub-folder name).
    pub name: String,
    /// File or folder it reads.
    pub path: PathBuf,
    /// Its format.
    pub kind: FileKind,
    /// The provider, schema already inferred.
    pub provider: Arc<dyn TableProvider>,
}

/// Opens one file (or a folder of same-format files) as a table, inferring
/// its schema.
pub async fn open_table(
    state: &dyn Session,
    path: &Path,
    kind: FileKind,
) -> Result<Arc<dyn TableProvider>> {
    let abs = std::fs::canonicalize(path)
        .map_err(|e| DataFusionError::Execution(format!("cannot open {}: {e}", path.display())))?;
    let mut url_text = abs.to_string_lossy().to_string();
    let sample = if abs.is_dir() {
        if !url_text.ends_with('/') {
            url_text.push('/');
        }
        first_file(&abs)?.ok_or_else(|| {
            DataFusionError::Execution(format!("{} has no data files", abs.display()))
        })?
    } else {
        abs.clone()
    };
    let url = ListingTableUrl::parse(&url_text)?;
    let delimiter = match kind {
        FileKind::Csv => csv_types::delimiter(&sample)?,
        _ => b',',
    };
    let options =
        ListingOptions::new(kind.format(delimiter)).with_file_extension(kind.extension(&sample));
    let mut schema = options.infer_schema(state, &url).await?;
    if kind == FileKind::Csv {
        // Every value is read: on a blocking thread, not a runtime worker.
        let (folder, extension, inferred) = (abs.clone(), options.file_extension.clone(), schema);
        let exact = SpawnedTask::spawn_blocking(move || {
            let files = csv_types::files_of(&folder, &extension)?;
            csv_types::exact_schema(&inferred, &files, delimiter)
        })
        .join()
        .await
        .map_err(|e| DataFusionError::Execution(format!("reading {}: {e}", abs.display())))??;
        schema = Arc::new(exact);
    }
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// `table` (a provider [`open_table`] made) reading the same files with
/// `schema`: the same fields, with other metadata (descriptions,
/// classification labels). An error when `table` is not a file table or
/// `schema` has other fields: a caller relabeling a table must not go on
/// with the table unlabeled.
pub fn with_schema(
    table: &Arc<dyn TableProvider>,
    schema: SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    let any: &dyn std::any::Any = table.as_ref();
    let listing = any
        .downcast_ref::<ListingTable>()
        .ok_or_else(|| DataFusionError::Internal("with_schema: not a table of files".into()))?;
    let same_fields = listing.schema().fields().len() == schema.fields().len()
        && listing
            .schema()
            .fields()
            .iter()
            .zip(schema.fields().iter())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if !same_fields {
        return Err(DataFusionError::Internal(
            "with_schema: the schema has other fields than the files".into(),
        ));
    }
    let config = ListingTableConfig::new_with_multi_paths(listing.table_paths().clone())
        .with_listing_options(listing.options().clone())
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn first_file(dir: &Path) -> Result<Option<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataFusionError::Execution(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && FileKind::from_path(p).is_some())
        .collect();
    files.sort();
    Ok(files.into_iter().next())
}

/// Lists the tables of a folder: one per data file, one per sub-folder.
/// Files tautan cannot read are skipped with a warning; a folder that does
/// not exist is an error.
pub async fn scan_folder(state: &dyn Session, folder: &Path) -> Result<Vec<FileTable>> {
    let entries = std::fs::read_dir(folder).map_err(|e| {
        DataFusionError::Execution(format!("cannot read folder {}: {e}", folder.display()))
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let (name, kind) = if path.is_dir() {
            let Some(sample) = first_file(&path)? else {
                continue;
            };
            let Some(kind) = FileKind::from_path(&sample) else {
                continue;
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            (name.to_string(), kind)
        } else {
            let Some(kind) = FileKind::from_path(&path) else {
                continue;
            };
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            (name.to_string(), kind)
        };
        if name.is_empty() {
            continue;
        }
        match open_table(state, &path, kind).await {
            Ok(provider) => out.push(FileTable {
                name,
                path,
                kind,
                provider,
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping unreadable file")
            }
        }
    }
    Ok(out)
}
