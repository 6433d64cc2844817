//! Errors that point at the place in the file a person has to fix.

use std::fmt;

/// A position in a source file (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// Line and column of a byte offset in `source`.
    pub fn of_offset(source: &str, offset: usize) -> Position {
        let offset = offset.min(source.len());
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Position { line, column }
    }
}

/// One problem in one file, with its position when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub position: Option<Position>,
    /// For CSV files: the column's header name.
    pub column_name: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn at(file: &str, source: &str, span: std::ops::Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            position: Some(Position::of_offset(source, span.start)),
            column_name: None,
            message: message.into(),
        }
    }
    pub fn whole_file(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.to_string(), position: None, column_name: None, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if let Some(c) = &self.column_name {
            write!(f, " (column {c})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a file; a file with any problem imports nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![e])
    }
}
