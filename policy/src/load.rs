//! Loading and validating policy files, with errors that name the file, line and reason.

use std::fmt;

use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

/// A policy source: a file name (for messages) and its text.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Where it came from.
    pub name: String,
    /// Cedar text.
    pub text: String,
}

/// The built-in copy of `policies/`: schema first, then the policy files.
pub const BUILTIN_FILES: [(&str, &str); 3] = [
    (
        "fsgate.cedarschema",
        include_str!("../../policies/fsgate.cedarschema"),
    ),
    (
        "default.cedar",
        include_str!("../../policies/default.cedar"),
    ),
    ("roles.cedar", include_str!("../../policies/roles.cedar")),
];

/// A policy or schema that cannot be used, with every reason found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// One line per problem: `file:line:col: message`.
    pub problems: Vec<String>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    pub(crate) fn one(msg: impl Into<String>) -> Self {
        Self {
            problems: vec![msg.into()],
        }
    }
}

/// Line and column (1-based) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = src.get(..offset.min(src.len())).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

/// Renders a Cedar diagnostic as `file:line:col: message (help)`.
pub(crate) fn describe(diag: &dyn Diagnostic, file: &str, src: Option<&str>) -> String {
    let mut out = String::from(file);
    if let (Some(src), Some(label)) = (src, diag.labels().and_then(|mut l| l.next())) {
        let (line, col) = line_col(src, label.offset());
        out.push_str(&format!(":{line}:{col}"));
    }
    out.push_str(&format!(": {diag}"));
    let mut cause = diag.diagnostic_source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.diagnostic_source();
    }
    if let Some(help) = diag.help() {
        out.push_str(&format!(" (help: {help})"));
    }
    out
}

/// Parses a schema.
pub(crate) fn parse_schema(file: &PolicyFile) -> Result<Schema, PolicyError> {
    match Schema::from_cedarschema_str(&file.text) {
        Ok((schema, _warnings)) => Ok(schema),
        Err(e) => Err(PolicyError::one(describe(&e, &file.name, Some(&file.text)))),
    }
}

/// Parses policy files into one set. Each policy or template takes its `@id("…")` annotation
/// as its id, or `file:N` without one.
pub(crate) fn parse_files(
    files: &[PolicyFile],
) -> Result<(PolicySet, Vec<(String, String)>), PolicyError> {
    let mut set = PolicySet::new();
    let mut origin = Vec::new(); // (policy id, file name)
    let mut problems = Vec::new();
    for file in files {
        let parsed: PolicySet = match file.text.parse() {
            Ok(p) => p,
            Err(e) => {
                problems.push(describe(&e, &file.name, Some(&file.text)));
                continue;
            }
        };
        for (n, t) in parsed.templates().enumerate() {
            let id = t
                .annotation("id")
                .map_or_else(|| format!("{}:t{n}", file.name), str::to_owned);
            if let Err(e) = set.add_template(t.new_id(PolicyId::new(&id))) {
                problems.push(describe(&e, &file.name, None));
            }
            origin.push((id, file.name.clone()));
        }
        for (n, p) in parsed.policies().enumerate() {
            let id = p
                .annotation("id")
                .map_or_else(|| format!("{}:{n}", file.name), str::to_owned);
            if let Err(e) = set.add(p.new_id(PolicyId::new(&id))) {
                problems.push(describe(&e, &file.name, None));
            }
            origin.push((id, file.name.clone()));
        }
    }
    if problems.is_empty() {
        Ok((set, origin))
    } else {
        Err(PolicyError { problems })
    }
}

/// Validates a set strictly; `sources` maps policy ids to (file, text) for line numbers.
pub(crate) fn validate(
    schema: &Schema,
    set: &PolicySet,
    source_of: &dyn Fn(&str) -> Option<(String, String)>,
) -> Result<(), PolicyError> {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    if result.validation_passed() {
        return Ok(());
    }
    let problems = result
        .validation_errors()
        .map(|e| {
            let id = e.policy_id().to_string();
            match source_of(&id) {
                Some((file, text)) => describe(e, &file, Some(&text)),
                None => describe(e, &format!("policy {id}"), None),
            }
        })
        .collect();
    Err(PolicyError { problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
