//! What an upload may name: the event's edges (each at its timing point, with where its token
//! comes from) and its waves, as the ingest endpoint checks them.
//!
//! The edges of an event are its `edge-*.toml` files; each edge's id is its `[edge] id`.
//! [`UploadScope::load_dir`] reads an event folder; [`UploadScope::new`] takes configs already
//! parsed (tests, the binary's own loading).
//! Deliberately not here: tokens themselves (`auth`), the race rules (`timing-core`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use event_config::edge::TokenSource;
use event_config::{ConfigErrors, EdgeConfig, EventConfig};

/// One edge of the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeEdge {
    /// The id of the timing point this edge's readers sit at.
    pub point: String,
    /// Where the edge reads its uplink token (the aggregator reads the same environment variable).
    pub token: TokenSource,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadScope {
    edges: BTreeMap<String, ScopeEdge>,
    /// `(race id, wave id)`.
    waves: BTreeSet<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("{first} and {second} both declare edge {edge:?}")]
    DuplicateEdge { edge: String, first: String, second: String },
}

impl UploadScope {
    pub fn new(event: &EventConfig, edges: &[EdgeConfig]) -> UploadScope {
        let course = &event.course;
        let edges = edges
            .iter()
            .map(|e| {
                let point = course.point(e.point).id.to_string();
                (e.id.clone(), ScopeEdge { point, token: e.token.clone() })
            })
            .collect();
        let waves = course.waves.iter().map(|w| (course.race(w.race).id.clone(), w.id.clone())).collect();
        UploadScope { edges, waves }
    }

    /// Reads an event folder: `event.toml` and every `edge-*.toml` beside it.
    pub fn load_dir(dir: &Path) -> Result<UploadScope, ScopeError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path)
                .map(|text| (path.display().to_string(), text))
                .map_err(|source| ScopeError::Io { path, source })
        };
        let (name, text) = read(dir.join("event.toml"))?;
        let event = event_config::parse_event(&name, &text).map_err(ScopeError::Config)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| ScopeError::Io { path: dir.to_path_buf(), source })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("edge-") && n.ends_with(".toml"))
            })
            .collect();
        files.sort();
        let mut edges: Vec<EdgeConfig> = Vec::new();
        let mut origin: BTreeMap<String, String> = BTreeMap::new();
        for path in files {
            let (name, text) = read(path)?;
            let edge = event_config::parse_edge(&name, &text, &event).map_err(ScopeError::Config)?;
            if let Some(first) = origin.insert(edge.id.clone(), name.clone()) {
                return Err(ScopeError::DuplicateEdge { edge: edge.id, first, second: name });
            }
            edges.push(edge);
        }
        Ok(UploadScope::new(&event, &edges))
    }

    pub fn edge(&self, id: &str) -> Option<&ScopeEdge> {
        self.edges.get(id)
    }

    /// The event's edges, by id.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &ScopeEdge)> {
        self.edges.iter().map(|(id, e)| (id.as_str(), e))
    }

    pub fn has_wave(&self, race: &str, wave: &str) -> bool {
        self.waves.contains(&(race.to_string(), wave.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(event: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config").join(event)
    }

    #[test]
    fn the_edges_of_an_event_are_its_edge_files() {
        let scope = UploadScope::load_dir(&config("demo")).unwrap();
        let edges: Vec<(&str, &str)> = scope.edges().map(|(id, e)| (id, e.point.as_str())).collect();
        assert_eq!(
            edges,
            [("finish", "finish"), ("km21", "km21"), ("km35", "km35"), ("km7", "km7"), ("start", "start")]
        );
        assert_eq!(scope.edge("finish").unwrap().token, TokenSource::Env("RACETIME_EDGE_TOKEN_FINISH".into()));
        assert!(scope.has_wave("marathon", "sas1"));
        assert!(!scope.has_wave("marathon", "nope"));
        assert!(scope.edge("km99").is_none());
        assert_eq!(UploadScope::load_dir(&config("paris-2024")).unwrap().edges().count(), 11);
    }

    #[test]
    fn two_files_declaring_one_edge_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["event.toml", "edge-finish.toml"] {
            std::fs::copy(config("demo").join(name), dir.path().join(name)).unwrap();
        }
        std::fs::copy(config("demo").join("edge-finish.toml"), dir.path().join("edge-finish-spare.toml")).unwrap();
        let err = UploadScope::load_dir(dir.path()).unwrap_err().to_string();
        let (first, second) = (dir.path().join("edge-finish-spare.toml"), dir.path().join("edge-finish.toml"));
        assert_eq!(err, format!("{} and {} both declare edge \"finish\"", first.display(), second.display()));
    }
}
