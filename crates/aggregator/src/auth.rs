//! Per-edge bearer tokens: which edge an upload comes from.
//!
//! Tokens never live in git. Each edge's token comes from the environment variable its edge file
//! names (`[uplink] token_env`, e.g. `RACETIME_EDGE_TOKEN_FINISH`), or from a tokens file given
//! to the aggregator (TOML, `edge_id = "token"`), or both if they agree. An edge whose file uses
//! `token_file` (a path on the edge box) needs an entry in the tokens file.
//!
//! Checks at load: every entry names an edge of the event, tokens are at least
//! [`TOKEN_MIN_CHARS`] long, no two edges share one. A presented token is compared with every
//! known token in constant time (only its length can leak).
//! Error messages name the edge, variable or file, never a token.
//!
//! Deliberately not here: rotation, hashing tokens at rest, TLS (a reverse proxy's job).

use std::collections::BTreeMap;
use std::fmt;

use event_config::edge::TokenSource;
use subtle::ConstantTimeEq;

use crate::scope::UploadScope;

/// The shortest token accepted: 16 characters (`openssl rand -hex 16` gives 32).
pub const TOKEN_MIN_CHARS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("tokens file {file}, line {line}: {message}")]
    Syntax { file: String, line: usize, message: String },
    #[error("tokens file {file}: the token of edge {edge:?} must be a string")]
    NotAString { file: String, edge: String },
    #[error("tokens file {file} names edge {edge:?}, which is not in the event")]
    UnknownEdge { file: String, edge: String },
    #[error("the token of edge {edge:?} (from {origin}) is {n_chars} characters; use at least {TOKEN_MIN_CHARS}")]
    TooShort { edge: String, origin: String, n_chars: usize },
    #[error("edge {edge:?} has different tokens in ${var} and in tokens file {file}")]
    Disagree { edge: String, var: String, file: String },
    #[error("edges {first:?} and {second:?} share a token")]
    Shared { first: String, second: String },
}

/// A parsed tokens file: `edge_id = "token"` lines.
pub struct TokensFile {
    name: String,
    tokens: BTreeMap<String, String>,
}

impl fmt::Debug for TokensFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokensFile").field("name", &self.name).field("edges", &self.tokens.keys()).finish()
    }
}

impl TokensFile {
    /// Parses the file's text; `name` is for messages.
    pub fn parse(name: &str, text: &str) -> Result<TokensFile, AuthError> {
        // Only the message and a line number: toml's Display quotes the line, which holds a token.
        let table: toml::Table = toml::from_str(text).map_err(|e| AuthError::Syntax {
            file: name.to_string(),
            line: e.span().map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            message: e.message().trim().to_string(),
        })?;
        let mut tokens = BTreeMap::new();
        for (edge, value) in table {
            let toml::Value::String(token) = value else {
                return Err(AuthError::NotAString { file: name.to_string(), edge });
            };
            tokens.insert(edge, token);
        }
        Ok(TokensFile { name: name.to_string(), tokens })
    }
}

/// The tokens of the event's edges.
pub struct Tokens {
    /// `(edge, token)`, by edge.
    tokens: Vec<(String, Vec<u8>)>,
    without_token: Vec<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("edges", &self.tokens.iter().map(|(e, _)| e).collect::<Vec<_>>())
            .field("without_token", &self.without_token)
            .finish()
    }
}

impl Tokens {
    /// Gathers each edge's token from `env` (a lookup such as `|v| std::env::var(v).ok()`)
    /// and the tokens file. An edge with neither is listed in [`Tokens::edges_without_token`]
    /// and cannot upload.
    pub fn load(
        scope: &UploadScope,
        file: Option<&TokensFile>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Tokens, AuthError> {
        if let Some(file) = file
            && let Some(edge) = file.tokens.keys().find(|e| scope.edge(e).is_none())
        {
            return Err(AuthError::UnknownEdge { file: file.name.clone(), edge: edge.clone() });
        }
        let mut tokens: Vec<(String, Vec<u8>)> = Vec::new();
        let mut without_token = Vec::new();
        for (edge, e) in scope.edges() {
            let from_env = match &e.token {
                TokenSource::Env(var) => env(var).filter(|t| !t.is_empty()).map(|t| (t, format!("${var}"), var)),
                TokenSource::File(_) => None,
            };
            let from_file =
                file.and_then(|f| f.tokens.get(edge).map(|t| (t.clone(), format!("tokens file {}", f.name))));
            let (token, origin) = match (from_env, from_file) {
                (Some((a, _, var)), Some((b, _))) if a != b => {
                    let file = file.map(|f| f.name.clone()).unwrap_or_default();
                    return Err(AuthError::Disagree { edge: edge.to_string(), var: var.clone(), file });
                }
                (Some((t, origin, _)), _) | (None, Some((t, origin))) => (t, origin),
                (None, None) => {
                    without_token.push(edge.to_string());
                    continue;
                }
            };
            let n_chars = token.chars().count();
            if n_chars < TOKEN_MIN_CHARS {
                return Err(AuthError::TooShort { edge: edge.to_string(), origin, n_chars });
            }
            if let Some((first, _)) = tokens.iter().find(|(_, t)| *t == token.as_bytes()) {
                return Err(AuthError::Shared { first: first.clone(), second: edge.to_string() });
            }
            tokens.push((edge.to_string(), token.into_bytes()));
        }
        Ok(Tokens { tokens, without_token })
    }

    /// The edge a presented token belongs to.
    ///
    /// Compares with every token, each in constant time, so the time taken does not tell how
    /// much of a token matched or which edge's it nearly was.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&str> {
        let mut found = None;
        for (edge, token) in &self.tokens {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(edge.as_str());
            }
        }
        found
    }

    /// Edges of the event with no token: they cannot upload (the binary warns at start).
    pub fn edges_without_token(&self) -> &[String] {
        &self.without_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> UploadScope {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo");
        UploadScope::load_dir(&dir).unwrap()
    }

    const FINISH: &str = "finish-0123456789abcdef";
    const KM7: &str = "km7-0123456789abcdef";

    #[test]
    fn tokens_come_from_the_edges_variables_and_the_tokens_file() {
        let scope = scope();
        let file = TokensFile::parse("tokens.toml", &format!("km7 = \"{KM7}\"\n")).unwrap();
        let env = |var: &str| (var == "RACETIME_EDGE_TOKEN_FINISH").then(|| FINISH.to_string());
        let tokens = Tokens::load(&scope, Some(&file), env).unwrap();
        assert_eq!(tokens.authenticate(FINISH.as_bytes()), Some("finish"));
        assert_eq!(tokens.authenticate(KM7.as_bytes()), Some("km7"));
        assert_eq!(tokens.authenticate(b"finish-0123456789abcdeX"), None);
        assert_eq!(tokens.authenticate(b"finish"), None);
        assert_eq!(tokens.authenticate(b""), None);
        assert_eq!(tokens.edges_without_token(), ["km21", "km35", "start"]);
        assert!(!format!("{tokens:?}{file:?}").contains("0123456789"), "debug output shows no token");
        // The same token in both places is fine.
        let both = TokensFile::parse("tokens.toml", &format!("finish = \"{FINISH}\"")).unwrap();
        assert!(Tokens::load(&scope, Some(&both), env).is_ok());
    }

    #[test]
    fn bad_token_sources_are_refused_without_showing_a_token() {
        let scope = scope();
        let no_env = |_: &str| None;
        let load = |text: &str| {
            let file = TokensFile::parse("tokens.toml", text)?;
            Tokens::load(&scope, Some(&file), no_env)
        };
        let cases = [
            (format!("km99 = \"{KM7}\""), "tokens file tokens.toml names edge \"km99\", which is not in the event"),
            ("km7 = 5".to_string(), "tokens file tokens.toml: the token of edge \"km7\" must be a string"),
            (
                "km7 = \"short\"".to_string(),
                "the token of edge \"km7\" (from tokens file tokens.toml) is 5 characters; use at least 16",
            ),
            (format!("km7 = \"{KM7}\"\nstart = \"{KM7}\""), "edges \"km7\" and \"start\" share a token"),
            (format!("km7 = \"{KM7}\"\nkm7 = \"x\""), "tokens file tokens.toml, line 2: duplicate key"),
        ];
        for (text, want) in cases {
            let got = load(&text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text}: {got}");
            assert!(!got.contains("0123456789"), "{got}");
        }
        let file = TokensFile::parse("tokens.toml", &format!("finish = \"{FINISH}\"")).unwrap();
        let other = |_: &str| Some(KM7.to_string());
        let got = Tokens::load(&scope, Some(&file), other).unwrap_err().to_string();
        assert_eq!(
            got,
            "edge \"finish\" has different tokens in $RACETIME_EDGE_TOKEN_FINISH and in tokens file tokens.toml"
        );
    }
}
