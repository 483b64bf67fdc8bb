//! Web-service links: an agency's REST/JSON (or CSV) endpoints, read as
//! tables.
//!
//! Many agencies have an API and no database the custodian may reach. A
//! link of kind `http` declares each endpoint as a table ([`Endpoint`]):
//! its path, where the records are in the JSON body (a JSON pointer), the
//! columns with their types (declared, or inferred from a first page for
//! `tautan check` to print and the custodian to pin), how it pages
//! ([`Pagination`]) and which columns the service can filter on (sent as
//! query parameters; everything else is filtered in tautan).
//!
//! What arrives is never trusted into rows unless it is a whole, parsable
//! answer: a non-2xx status or a body that does not parse is an error,
//! never rows (a connector that turned an error page into rows once
//! overwrote good data). Every read is bounded: pages and bytes per scan
//! have hard caps, 429 and 5xx answers are retried with backoff (honouring
//! `Retry-After`), requests to one link are spaced by its rate limit, and
//! a "next page" at another origin than the link's is refused (the link's
//! headers carry its secrets).
//!
//! * [`endpoint`]: what a table is (path, records, columns, keys);
//! * [`fetch`]: one request, with retries, rate limit and caps;
//! * [`page`]: pagination and decoding a page into Arrow;
//! * [`table`]: the DataFusion table provider streaming the pages.

pub mod endpoint;
pub mod fetch;
pub mod page;
pub mod table;

pub use endpoint::{Endpoint, Pagination};
pub use fetch::{HttpLink, HttpLinkOptions};
pub use table::HttpTable;
