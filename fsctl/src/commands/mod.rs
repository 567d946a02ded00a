//! One file per command group; each function runs one command and prints its result.

pub(crate) mod audit;
pub(crate) mod identity;
pub(crate) mod import;
pub(crate) mod import_iam;
pub(crate) mod ops;
pub(crate) mod policy;
pub(crate) mod share;
