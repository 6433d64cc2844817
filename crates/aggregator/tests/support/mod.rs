//! Shared by the aggregator's integration tests: the demo event, a race generated on it, and
//! the aggregator's state over a real SQLite store, every edge holding [`edge_token`].
//! Each test crate uses its own part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aggregator::race::RaceSetup;
use aggregator::{AggregatorStore, AppState, IngestConfig, SystemClock, Tokens, UploadScope};
use event_config::EventConfig;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The token of an edge of the demo event (its `RACETIME_EDGE_TOKEN_<EDGE>`).
pub(crate) fn edge_token(edge: &str) -> String {
    format!("{edge}-token-for-the-aggregator-tests")
}

pub(crate) struct Demo {
    pub(crate) event: EventConfig,
    pub(crate) race: race_sim::SimRace,
    pub(crate) state: AppState,
}

/// The demo event with `scenario`'s race, and an aggregator state storing into `db`.
pub(crate) fn demo(db: &Path, scenario: &race_sim::Scenario) -> Demo {
    let event_dir = repo().join("config/demo");
    let event =
        event_config::parse_event("demo", &std::fs::read_to_string(event_dir.join("event.toml")).unwrap()).unwrap();
    let race = race_sim::generate(&event, scenario);
    let scope = UploadScope::load_dir(&event_dir).unwrap();
    let tokens = Tokens::load(&scope, None, |var| {
        let edge = var.strip_prefix("RACETIME_EDGE_TOKEN_")?.to_ascii_lowercase();
        Some(edge_token(&edge))
    })
    .unwrap();
    let state = AppState::new(AggregatorStore::open(db).unwrap(), scope, tokens, IngestConfig::default(), SystemClock);
    Demo { event, race, state }
}

impl Demo {
    /// The race task's setup: the race's gun corrections, no desk, default live-feed limits.
    pub(crate) fn setup(&self) -> RaceSetup {
        RaceSetup {
            course: self.race.course.clone(),
            corrections: self.race.gun_corrections(),
            event_name: self.event.name.clone(),
            zone: self.event.time_zone,
            desk_token: None,
            live: Default::default(),
        }
    }
}
