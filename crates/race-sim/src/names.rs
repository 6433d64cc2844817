//! Names for generated participants (a mix common at a Paris mass race).

use rand::Rng;
use rand::seq::IndexedRandom;
use timing_core::Gender;

const FEMALE: &[&str] = &[
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Sarah", "Julie", "Emma", "Lucie", "Anaïs", "Claire", "Sofia",
    "Hannah", "Maria", "Aïcha", "Nadia", "Élodie", "Margaux", "Zoé", "Louise",
];
const MALE: &[&str] = &[
    "Lucas", "Hugo", "Thomas", "Nicolas", "Julien", "Maxime", "Antoine", "Karim", "Mehdi", "Pierre", "Louis", "Yanis",
    "David", "Marco", "Jan", "Olivier", "Théo", "Rémi", "Samir", "Benoît",
];
const LAST: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
    "Laurent", "Lefèvre", "Michel", "Garcia", "Fournier", "Nguyen", "Benali", "Rossi", "Müller", "O'Brien", "Da Silva",
    "Girard", "Faure",
];
const CLUBS: &[&str] =
    &["Paris Running Club", "ASM Marathon", "Stade Français", "US Ivry", "Team Nocturne", "Les Foulées du Marais"];

pub(crate) fn pick(rng: &mut impl Rng, gender: Gender) -> (&'static str, &'static str) {
    let first = match gender {
        Gender::Female => FEMALE.choose(rng),
        Gender::Male => MALE.choose(rng),
        Gender::NonBinary => if rng.random_bool(0.5) { FEMALE } else { MALE }.choose(rng),
    };
    (first.expect("not empty"), LAST.choose(rng).expect("not empty"))
}

pub(crate) fn club(rng: &mut impl Rng) -> &'static str {
    CLUBS.choose(rng).expect("not empty")
}
