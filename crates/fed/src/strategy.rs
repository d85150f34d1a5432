//! Aggregation strategies: how the coordinator turns one round's hospital
//! updates into the next global model.
//!
//! # Extension point
//!
//! Every rule implements the [`Strategy`] trait and lives in its own small
//! file in `strategy/` (`fedavg.rs`, `fedadam.rs`, `krum.rs`, ...), which also
//! defines its [`RuleSpec`]: its names, its hyper-parameters with their
//! defaults, and how to build it. [`RULES`] is the registry: adding a rule
//! means writing one file whose type implements the crate-internal `Rule`
//! trait (its name and its arithmetic; [`Strategy`] then comes with it) and
//! whose `SPEC` describes it, and adding the file's name to the one
//! `registry!` line below. [`StrategyConfig`] (a rule and its values) is what
//! configuration files and the command line name, and
//! [`StrategyConfig::build`] turns it into a boxed [`Strategy`] after
//! validating the hyper-parameters; nothing matches rules by name. The
//! adaptive server optimisers share one core (`fedopt.rs`): their files supply
//! only the second-moment update and get their `Rule` from a one-line
//! `server_optimizer_rule!`.
//!
//! # Contract shared by all rules
//!
//! * Updates arrive sorted by node name. [`validate_updates`] (run for every
//!   rule before any arithmetic) rejects an empty round, an update whose length
//!   differs from the global vector, non-finite weights and a node that appears
//!   twice.
//! * Output is deterministic: the same inputs (in the same order) give a
//!   bit-identical result. Sums are accumulated in `f64` in a fixed order and
//!   rounded to `f32` once at the end; no hashing, threading or randomness is
//!   involved.
//! * A rule never returns non-finite weights: it reports
//!   [`AggregationError::NonFiniteResult`] instead.
//! * `aggregate` is transactional: when it returns an error, the rule's
//!   server-side state (FedAdam/FedYogi/FedAdagrad moments) is left untouched.
//! * Sample counts (`num_samples`) matter only to the averaging rules (FedAvg,
//!   FedProx and the adaptive server optimisers). The robust rules (FedMedian,
//!   TrimmedMean, Krum) are deliberately unweighted: a client could otherwise
//!   gain influence simply by claiming a large sample count.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Declares each rule's file and lists its [`RuleSpec`] in [`RULES`].
macro_rules! registry {
    ($($rule:ident),* $(,)?) => {
        $(pub mod $rule;)*
        /// Every rule, in command-line order.
        pub const RULES: &[&RuleSpec] = &[$(&$rule::SPEC),*];
    };
}

registry!(
    fedavg,
    fedprox,
    fedadam,
    fedyogi,
    fedadagrad,
    fedmedian,
    trimmed_mean,
    krum
);

mod fedopt;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

/// One hospital's update as the aggregator sees it (already validated: same
/// length as the global vector, finite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientUpdate<'a> {
    /// Node (hospital) name; unique within a round.
    pub node: &'a str,
    /// The client's locally trained weights, flattened like the global vector.
    pub weights: &'a [f32],
    /// Number of training samples behind this update (used for weighting by
    /// the averaging rules only).
    pub num_samples: u64,
}

/// Why a round could not be aggregated, or a rule could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AggregationError {
    /// The round contained no updates at all.
    #[error("no client updates to aggregate")]
    NoUpdates,
    /// An update's length differs from the global weight vector's.
    #[error(
        "update from node {node:?} has {got} weights, expected {expected} (the global model's length)"
    )]
    LengthMismatch {
        node: String,
        expected: usize,
        got: usize,
    },
    /// An update contains NaN or an infinity.
    #[error("update from node {node:?} has a non-finite weight at index {index}")]
    NonFiniteUpdate { node: String, index: usize },
    /// The same node appears twice in one round.
    #[error("node {node:?} sent more than one update in the same round")]
    DuplicateNode { node: String },
    /// A sample-weighted rule received updates whose sample counts sum to zero.
    #[error("the updates' sample counts sum to zero, so they cannot be weighted by samples")]
    ZeroSamples,
    /// The rule needs every update, but only their mean is known (secure aggregation).
    #[error("{rule} needs the individual updates, not only their mean")]
    NeedsUpdates { rule: &'static str },
    /// The rule needs more updates than the round has (e.g. Krum needs n >= 2f + 3).
    #[error("{rule} needs at least {needed} client updates this round, got {got}")]
    NotEnoughForRule {
        rule: &'static str,
        needed: usize,
        got: usize,
    },
    /// A hyper-parameter is out of range.
    #[error("{rule}: invalid {parameter} = {value}: must be {requirement}")]
    InvalidParameter {
        rule: &'static str,
        parameter: &'static str,
        value: String,
        requirement: &'static str,
    },
    /// A rule name that [`StrategyConfig::from_name`] does not know.
    #[error("unknown aggregation rule {name:?}; known rules: {}", StrategyConfig::names().collect::<Vec<_>>().join(", "))]
    UnknownRule { name: String },
    /// A hyper-parameter the rule does not have, or a value of the wrong kind.
    #[error("{rule}: {message}")]
    BadParameter { rule: &'static str, message: String },
    /// The computation overflowed (e.g. an extreme server learning rate).
    #[error("{rule} produced a non-finite value at index {index}")]
    NonFiniteResult { rule: &'static str, index: usize },
    /// Persisted or in-memory server state does not fit (wrong names or lengths,
    /// non-finite values, or state given to a stateless rule).
    #[error("invalid strategy state: {0}")]
    InvalidState(String),
}

/// What a rule needs of a round, declared by the rule itself: the round
/// driver runs a rule under secure aggregation only if the weighted mean is
/// enough, since that is all secure aggregation reveals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundInput {
    /// Every hospital's update (the robust rules: median, trimmed mean, Krum).
    Updates,
    /// Only the sample-weighted mean of the updates (the FedAvg family).
    WeightedMean,
}

/// An aggregation rule. Updates arrive sorted by node name; output must be
/// deterministic (bit-identical for identical inputs).
pub trait Strategy: Send {
    /// Command-line name of the rule (one of [`StrategyConfig::names`]).
    fn name(&self) -> &'static str;

    /// What the rule needs of a round.
    fn input(&self) -> RoundInput;

    /// The next global weights from the sample-weighted mean `mean` of a
    /// round's updates over `total_samples` training samples, for a rule whose
    /// [`Strategy::input`] is [`RoundInput::WeightedMean`]; the result equals
    /// [`Strategy::aggregate`] on updates with that mean, and the rule's server
    /// state advances the same way.
    ///
    /// # Errors
    /// [`AggregationError::NeedsUpdates`] for a rule that needs the individual
    /// updates; the checks of [`validate_updates`] on the mean, and
    /// [`AggregationError::ZeroSamples`] for a zero total.
    fn aggregate_mean(
        &mut self,
        global: &[f32],
        mean: &[f32],
        total_samples: u64,
    ) -> Result<Vec<f32>, AggregationError>;

    /// The next global weights from the current global and the round's updates.
    fn aggregate(
        &mut self,
        global: &[f32],
        updates: &[ClientUpdate<'_>],
    ) -> Result<Vec<f32>, AggregationError>;

    /// Server-side optimiser state to persist between rounds (empty for
    /// stateless rules), as named vectors.
    fn state(&self) -> Vec<(String, Vec<f32>)> {
        Vec::new()
    }

    /// Restore what [`Strategy::state`] returned (e.g. after a coordinator
    /// restart). Stateless rules accept only an empty state.
    fn restore(&mut self, state: Vec<(String, Vec<f32>)>) -> Result<(), AggregationError> {
        refuse_state(self.name(), state)
    }
}

/// A rule's outcome: the next global weights.
type Aggregated = Result<Vec<f32>, AggregationError>;

/// Named server-state vectors, as [`Strategy::state`] returns them.
type ServerState = Vec<(String, Vec<f32>)>;

/// What each rule's file implements. The blanket [`Strategy`] implementation
/// below adds what all rules share: the round is checked by
/// [`validate_updates`] before [`Rule::combine`] sees it, and a rule keeps no
/// server state unless it overrides the state methods.
trait Rule: Send {
    /// Command-line name (one of [`StrategyConfig::names`]).
    const NAME: &'static str;

    /// The next global weights. `updates` have passed [`validate_updates`]:
    /// there is at least one, each is as long as `global`, all are finite and
    /// no node appears twice.
    fn combine(&mut self, global: &[f32], updates: &[ClientUpdate<'_>]) -> Aggregated;

    /// What the rule needs of a round; rules that reduce a round to its
    /// sample-weighted mean declare [`RoundInput::WeightedMean`] and
    /// implement [`Rule::combine_mean`].
    const INPUT: RoundInput = RoundInput::Updates;

    /// The next global weights from the sample-weighted mean of a validated
    /// round (one value per coordinate of `global`).
    fn combine_mean(&mut self, _global: &[f32], _mean: Vec<f64>) -> Aggregated {
        Err(AggregationError::NeedsUpdates { rule: Self::NAME })
    }

    /// See [`Strategy::state`].
    fn saved_state(&self) -> ServerState {
        Vec::new()
    }

    /// See [`Strategy::restore`].
    fn restore_state(&mut self, state: ServerState) -> Result<(), AggregationError> {
        refuse_state(Self::NAME, state)
    }
}

impl<R: Rule> Strategy for R {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn aggregate(
        &mut self,
        global: &[f32],
        updates: &[ClientUpdate<'_>],
    ) -> Result<Vec<f32>, AggregationError> {
        validate_updates(global.len(), updates)?;
        self.combine(global, updates)
    }

    fn input(&self) -> RoundInput {
        R::INPUT
    }

    fn aggregate_mean(
        &mut self,
        global: &[f32],
        mean: &[f32],
        total_samples: u64,
    ) -> Result<Vec<f32>, AggregationError> {
        if R::INPUT == RoundInput::Updates {
            return Err(AggregationError::NeedsUpdates { rule: R::NAME });
        }
        let as_update = ClientUpdate {
            node: "weighted mean",
            weights: mean,
            num_samples: total_samples,
        };
        validate_updates(global.len(), &[as_update])?;
        if total_samples == 0 {
            return Err(AggregationError::ZeroSamples);
        }
        self.combine_mean(global, mean.iter().map(|&w| f64::from(w)).collect())
    }

    fn state(&self) -> Vec<(String, Vec<f32>)> {
        self.saved_state()
    }

    fn restore(&mut self, state: Vec<(String, Vec<f32>)>) -> Result<(), AggregationError> {
        self.restore_state(state)
    }
}

/// How a rule without server state answers a restore: an empty state is fine,
/// anything else is an error.
fn refuse_state(rule: &str, state: ServerState) -> Result<(), AggregationError> {
    if state.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = state.iter().map(|(name, _)| name.as_str()).collect();
        Err(AggregationError::InvalidState(format!(
            "{rule} keeps no server state but was given entries {names:?}"
        )))
    }
}

/// Checks the invariants every rule relies on: at least one update, every
/// update as long as the global vector, all weights finite, no node twice.
pub fn validate_updates(
    global_len: usize,
    updates: &[ClientUpdate<'_>],
) -> Result<(), AggregationError> {
    if updates.is_empty() {
        return Err(AggregationError::NoUpdates);
    }
    let mut seen = BTreeSet::new();
    for update in updates {
        if update.weights.len() != global_len {
            return Err(AggregationError::LengthMismatch {
                node: update.node.to_owned(),
                expected: global_len,
                got: update.weights.len(),
            });
        }
        if let Some(index) = update.weights.iter().position(|w| !w.is_finite()) {
            return Err(AggregationError::NonFiniteUpdate {
                node: update.node.to_owned(),
                index,
            });
        }
        if !seen.insert(update.node) {
            return Err(AggregationError::DuplicateNode {
                node: update.node.to_owned(),
            });
        }
    }
    Ok(())
}

/// Sample-weighted mean of the updates, coordinate by coordinate, in `f64`.
///
/// Client `i` gets coefficient `num_samples_i / total` (computed in `f64`);
/// the products are accumulated in the order the updates are given. The
/// caller must have run [`validate_updates`].
pub(crate) fn weighted_mean(updates: &[ClientUpdate<'_>]) -> Result<Vec<f64>, AggregationError> {
    let total: u128 = updates.iter().map(|u| u128::from(u.num_samples)).sum();
    if total == 0 {
        return Err(AggregationError::ZeroSamples);
    }
    let total = total as f64;
    let len = updates.first().map_or(0, |u| u.weights.len());
    let mut acc = vec![0.0f64; len];
    for update in updates {
        let coefficient = update.num_samples as f64 / total;
        for (a, &w) in acc.iter_mut().zip(update.weights) {
            *a += coefficient * f64::from(w);
        }
    }
    Ok(acc)
}

/// Rounds an `f64` result to `f32`, refusing anything that is not finite.
pub(crate) fn finish(
    rule: &'static str,
    values: impl IntoIterator<Item = f64>,
) -> Result<Vec<f32>, AggregationError> {
    values
        .into_iter()
        .enumerate()
        .map(|(index, x)| {
            let x = x as f32;
            if x.is_finite() {
                Ok(x)
            } else {
                Err(AggregationError::NonFiniteResult { rule, index })
            }
        })
        .collect()
}

/// Builds an [`AggregationError::InvalidParameter`].
pub(crate) fn invalid(
    rule: &'static str,
    parameter: &'static str,
    value: impl ToString,
    requirement: &'static str,
) -> AggregationError {
    AggregationError::InvalidParameter {
        rule,
        parameter,
        value: value.to_string(),
        requirement,
    }
}

/// A hyper-parameter's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    /// A real number (learning rates, moments, fractions).
    Real(f32),
    /// A count (of clients).
    Count(usize),
}

/// A rule's entry in the registry ([`RULES`]), defined in the rule's file as `SPEC`.
pub struct RuleSpec {
    /// Name in configuration files (the `rule` tag, snake_case: `fed_adam`).
    pub tag: &'static str,
    /// Command-line name (`fedadam`); also accepted as the tag.
    pub name: &'static str,
    /// Hyper-parameters in file order, with the defaults of [`StrategyConfig::from_name`]
    /// (their kind is the kind a value must have). A parameter named `mu` is the clients'
    /// proximal coefficient ([`StrategyConfig::proximal_mu`]).
    pub params: &'static [(&'static str, Param)],
    /// Validates the hyper-parameters (read with [`StrategyConfig::real`] and
    /// [`StrategyConfig::count`]) and builds the rule with fresh server state.
    pub build: fn(&StrategyConfig) -> Result<Box<dyn Strategy>, AggregationError>,
    /// Fewest client updates a round needs for the rule to be defined.
    pub min_updates: fn(&StrategyConfig) -> usize,
}

/// [`RuleSpec::min_updates`] of the rules defined on any non-empty round.
pub(crate) fn any_round(_: &StrategyConfig) -> usize {
    1
}

/// Which aggregation rule to run, with its hyper-parameters.
///
/// Serialised as an object with a `rule` tag (the rule's [`RuleSpec::tag`],
/// e.g. `{"rule": "fed_adam", "eta": 0.1, "beta1": 0.9, "beta2": 0.99,
/// "tau": 0.001}`), its hyper-parameters in the rule's order; the command-line
/// names (`"fedadam"`, `"trimmed-mean"`, ...) are accepted as tags when
/// deserialising. Every hyper-parameter must be given (no silent defaults in
/// files; unknown fields are rejected). See each rule's type for its semantics.
#[derive(Clone)]
pub struct StrategyConfig {
    spec: &'static RuleSpec,
    values: Vec<Param>,
}

impl std::fmt::Debug for StrategyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct(self.spec.name);
        for ((param, _), value) in self.spec.params.iter().zip(&self.values) {
            match value {
                Param::Real(x) => out.field(param, x),
                Param::Count(n) => out.field(param, n),
            };
        }
        out.finish()
    }
}

impl PartialEq for StrategyConfig {
    fn eq(&self, other: &Self) -> bool {
        self.spec.tag == other.spec.tag && self.values == other.values
    }
}

impl StrategyConfig {
    /// Command-line names of all rules, in registry order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        RULES.iter().map(|spec| spec.name)
    }

    /// The rule `name` (its command-line name, exact and lower case) with its
    /// default hyper-parameters, which each rule's file documents and defines
    /// in its `SPEC`:
    ///
    /// | name           | defaults |
    /// |----------------|----------|
    /// | `fedavg`       | — |
    /// | `fedprox`      | `mu = 0.01` (one of the values explored by Li et al. 2020; tune per task) |
    /// | `fedadam`      | `eta = 0.1, beta1 = 0.9, beta2 = 0.99, tau = 1e-3` |
    /// | `fedyogi`      | `eta = 0.1, beta1 = 0.9, beta2 = 0.99, tau = 1e-3` |
    /// | `fedadagrad`   | `eta = 0.1, tau = 1e-3` (no momentum) |
    /// | `fedmedian`    | — |
    /// | `trimmed-mean` | `beta = 0.2` (trims one value per end from 5 clients on; 0.1 would trim nothing below 10 clients) |
    /// | `krum`         | `byzantine = 1, multi = 1` (classic Krum; needs at least 5 clients) |
    ///
    /// For the server optimisers, `beta1 = 0.9`, `beta2 = 0.99` and
    /// `tau = 1e-3` follow Reddi et al. 2021; the paper tunes the server
    /// learning rate per task on a grid of powers of ten, so `eta = 0.1` is
    /// only a starting point.
    pub fn from_name(name: &str) -> Result<Self, AggregationError> {
        let spec = RULES.iter().find(|spec| spec.name == name).ok_or_else(|| {
            AggregationError::UnknownRule {
                name: name.to_owned(),
            }
        })?;
        Ok(Self {
            spec,
            values: spec.params.iter().map(|(_, default)| *default).collect(),
        })
    }

    /// Command-line name of the rule (one of [`Self::names`]); equal to the
    /// built strategy's [`Strategy::name`].
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The value of hyper-parameter `param`, when the rule has it.
    pub fn get(&self, param: &str) -> Option<Param> {
        let at = self.spec.params.iter().position(|(p, _)| *p == param)?;
        Some(self.values[at])
    }

    /// The same rule with `param` set to `value` (of the parameter's kind; a
    /// count is accepted for a real).
    pub fn with(mut self, param: &str, value: Param) -> Result<Self, AggregationError> {
        let bad = |message: String| AggregationError::BadParameter {
            rule: self.spec.name,
            message,
        };
        let Some(at) = self.spec.params.iter().position(|(p, _)| *p == param) else {
            let known: Vec<&str> = self.spec.params.iter().map(|(p, _)| *p).collect();
            return Err(bad(format!(
                "no hyper-parameter {param:?} (it has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        self.values[at] = match (self.spec.params[at].1, value) {
            (Param::Real(_), Param::Real(x)) => Param::Real(x),
            (Param::Real(_), Param::Count(n)) => Param::Real(n as f32),
            (Param::Count(_), Param::Count(n)) => Param::Count(n),
            (Param::Count(_), Param::Real(x)) => {
                return Err(bad(format!("{param} must be a whole number, not {x}")));
            }
        };
        Ok(self)
    }

    /// A real hyper-parameter the rule's `SPEC` declares (for its `build`).
    ///
    /// # Panics
    /// When the rule has no such real parameter: a mistake in the rule's file.
    pub fn real(&self, param: &str) -> f32 {
        match self.get(param) {
            Some(Param::Real(x)) => x,
            _ => panic!(
                "rule {} declares no real parameter {param:?}",
                self.spec.name
            ),
        }
    }

    /// A count hyper-parameter the rule's `SPEC` declares (for its `build`).
    ///
    /// # Panics
    /// When the rule has no such count parameter: a mistake in the rule's file.
    pub fn count(&self, param: &str) -> usize {
        match self.get(param) {
            Some(Param::Count(n)) => n,
            _ => panic!(
                "rule {} declares no count parameter {param:?}",
                self.spec.name
            ),
        }
    }

    /// Validates the hyper-parameters and instantiates the rule (with fresh
    /// server state).
    pub fn build(&self) -> Result<Box<dyn Strategy>, AggregationError> {
        (self.spec.build)(self)
    }

    /// Checks the hyper-parameters without keeping the built rule.
    pub fn validate(&self) -> Result<(), AggregationError> {
        self.build().map(drop)
    }

    /// Fewest client updates a round needs for this rule to be defined
    /// (Krum: `max(2f + 3, m + f)`; every other rule: one).
    pub fn min_updates(&self) -> usize {
        (self.spec.min_updates)(self)
    }

    /// Proximal coefficient clients must use (`mu`, which FedProx has; else 0).
    pub fn proximal_mu(&self) -> f32 {
        match self.get("mu") {
            Some(Param::Real(mu)) => mu,
            _ => 0.0,
        }
    }

    /// The configuration an object's fields describe (see the type's documentation).
    fn from_fields(mut fields: BTreeMap<String, RawValue>) -> Result<Self, String> {
        let tag = match fields.remove("rule") {
            Some(RawValue::Text(tag)) => tag,
            Some(_) => return Err("`rule` must be a rule's name".into()),
            None => return Err("missing field `rule`".into()),
        };
        let spec = RULES
            .iter()
            .find(|spec| spec.tag == tag || spec.name == tag)
            .ok_or_else(|| AggregationError::UnknownRule { name: tag.clone() }.to_string())?;
        let mut values = Vec::with_capacity(spec.params.len());
        for (param, default) in spec.params {
            let value = match (default, fields.remove(*param)) {
                (_, None) => return Err(format!("missing field `{param}` for rule {tag}")),
                (Param::Real(_), Some(RawValue::Real(x))) => Param::Real(x as f32),
                (Param::Real(_), Some(RawValue::Count(n))) => Param::Real(n as f32),
                (Param::Count(_), Some(RawValue::Count(n))) => Param::Count(
                    usize::try_from(n).map_err(|_| format!("`{param}` = {n} is too large"))?,
                ),
                (Param::Count(_), Some(_)) => {
                    return Err(format!("`{param}` of rule {tag} must be a whole number"));
                }
                (Param::Real(_), Some(RawValue::Text(_))) => {
                    return Err(format!("`{param}` of rule {tag} must be a number"));
                }
            };
            values.push(value);
        }
        if let Some(unknown) = fields.keys().next() {
            let known: Vec<String> = std::iter::once("rule")
                .chain(spec.params.iter().map(|(p, _)| *p))
                .map(|p| format!("`{p}`"))
                .collect();
            return Err(format!(
                "unknown field `{unknown}` for rule {tag}, expected one of {}",
                known.join(", ")
            ));
        }
        Ok(Self { spec, values })
    }
}

/// A field of a serialised [`StrategyConfig`].
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawValue {
    Text(String),
    Count(u64),
    Real(f64),
}

impl serde::Serialize for StrategyConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1 + self.values.len()))?;
        map.serialize_entry("rule", self.spec.tag)?;
        for ((param, _), value) in self.spec.params.iter().zip(&self.values) {
            match value {
                Param::Real(x) => map.serialize_entry(param, x)?,
                Param::Count(n) => map.serialize_entry(param, n)?,
            }
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for StrategyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = BTreeMap::<String, RawValue>::deserialize(deserializer)?;
        Self::from_fields(fields).map_err(serde::de::Error::custom)
    }
}

impl Default for StrategyConfig {
    /// FedAvg, the registry's first rule.
    fn default() -> Self {
        Self {
            spec: RULES[0],
            values: Vec::new(),
        }
    }
}

impl FromStr for StrategyConfig {
    type Err = AggregationError;

    /// Same as [`StrategyConfig::from_name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}
