//! The federation's rules, checked over the authentic entries in log order:
//!
//! * an entry appears once;
//! * a plan is registered once, for enrolled hospitals, with at least one
//!   round; a hospital approves a plan it is eligible for, once, naming the
//!   plan's registration entry;
//! * a hospital states how it prepared its data for a plan (DatasetPrepared)
//!   at most once, for a registered plan it is eligible for, naming the plan's
//!   registration entry, before or after its approval but before its first
//!   contribution to the plan (publishing one is optional); its text version
//!   (TextDatasetPrepared) follows the same rules and cannot say spans were
//!   removed from free text when no document was let out;
//! * rounds of a plan open one at a time, numbered 1, 2, ... up to the plan's
//!   rounds, each after the previous one was aggregated;
//! * a contribution belongs to the open round of its plan, comes from an
//!   eligible hospital that approved the plan, appears once per hospital and
//!   round, ran the plan's code, and its epsilon adds up within the plan's
//!   budget: `previous total <= total <= previous total + this round`, and
//!   `this round <= total` (a hospital's accountant composes its rounds by
//!   RDP, which never costs more than adding the rounds' epsilons at the same
//!   delta: see `docs/privacy.md`);
//! * an aggregate closes the open round and consumes exactly the round's
//!   contributions, each once, with the weights [`Weight::for_buckets`] gives;
//! * a released model is the output of an aggregate of its plan;
//! * an objection refers to an earlier entry.

use std::collections::{HashMap, HashSet};

use super::entries::changes_registry;
use super::report::{Report, ViolationKind};
use crate::entry::{
    Contribution, DatasetPrepared, Epsilon, PartyId, PlanRegistered, Role, RoundAggregated,
    SampleBucket, SignedEntry, Statement, Weight,
};
use crate::hash::Hash;
use crate::policy::Policy;
use crate::registry::Registry;

struct PlanState {
    registration: Hash,
    plan: PlanRegistered,
    approvals: HashSet<PartyId>,
    /// Index of each hospital's DatasetPrepared entry for the plan.
    datasets: HashMap<PartyId, u64>,
    /// Hospitals with a contribution to the plan (valid or not) so far.
    contributors: HashSet<PartyId>,
    last_round: u32,
    open: Option<OpenRound>,
    outputs: HashSet<Hash>,
    spent: HashMap<PartyId, Epsilon>,
}

struct OpenRound {
    round: u32,
    /// Contribution entry hashes, in log order.
    contributions: Vec<Hash>,
    contributors: HashSet<PartyId>,
}

struct ContributionRecord {
    index: u64,
    plan: Hash,
    round: u32,
    samples: SampleBucket,
    consumed: bool,
}

struct Rules<'r> {
    report: &'r mut Report,
    registry: Registry,
    seen: HashMap<Hash, u64>,
    plans: HashMap<Hash, PlanState>,
    contributions: HashMap<Hash, ContributionRecord>,
}

/// Check the rules; returns the key registry as of the end of the log.
pub(super) fn check_rules(
    policy: &Policy,
    entries: &[Option<SignedEntry>],
    leaves: &[Option<Hash>],
    report: &mut Report,
) -> Registry {
    let mut rules = Rules {
        report,
        registry: Registry::from_genesis(&policy.genesis),
        seen: HashMap::with_capacity(entries.len()),
        plans: HashMap::new(),
        contributions: HashMap::new(),
    };
    for (i, (entry, hash)) in entries.iter().zip(leaves).enumerate() {
        if let (Some(entry), Some(hash)) = (entry, hash) {
            rules.check(i as u64, *hash, entry);
        }
    }
    rules.registry
}

/// The registered plan, or a violation.
fn plan_or_flag<'p>(
    plans: &'p mut HashMap<Hash, PlanState>,
    report: &mut Report,
    index: u64,
    plan: &Hash,
) -> Option<&'p mut PlanState> {
    let found = plans.get_mut(plan);
    if found.is_none() {
        report.violation(
            index,
            ViolationKind::Plan,
            format!("plan {plan} is not registered"),
        );
    }
    found
}

impl Rules<'_> {
    fn flag(&mut self, index: u64, kind: ViolationKind, message: String) {
        self.report.violation(index, kind, message);
    }

    /// Check one authentic entry, whose entry hash is `hash`.
    fn check(&mut self, index: u64, hash: Hash, entry: &SignedEntry) {
        if let Some(first) = self.seen.get(&hash) {
            let message = format!("the same entry already appears at index {first}");
            self.flag(index, ViolationKind::DuplicateEntry, message);
            return;
        }
        self.seen.insert(hash, index);
        let author = entry.author();
        match entry.statement() {
            s if changes_registry(s) => {
                // Reported when the signatures were checked.
                let _ = self.registry.apply(s);
            }
            Statement::PlanRegistered(p) => self.plan_registered(index, hash, p),
            Statement::PlanApproved(a) => {
                let Some(plan) = plan_or_flag(&mut self.plans, self.report, index, &a.plan) else {
                    return;
                };
                let problem = if a.registration != plan.registration {
                    Some("the approval names another registration entry".to_string())
                } else if !plan.plan.eligible.contains(author) {
                    Some(format!("{author} is not eligible for the plan"))
                } else if !plan.approvals.insert(author.clone()) {
                    Some(format!("{author} already approved the plan"))
                } else {
                    None
                };
                if let Some(message) = problem {
                    self.flag(index, ViolationKind::Plan, message);
                }
            }
            Statement::RoundOpened(r) => {
                let Some(plan) = plan_or_flag(&mut self.plans, self.report, index, &r.plan) else {
                    return;
                };
                let problem = if let Some(open) = &plan.open {
                    Some(format!("round {} is still open", open.round))
                } else if r.round != plan.last_round + 1 {
                    Some(format!(
                        "round {} opened after round {}",
                        r.round, plan.last_round
                    ))
                } else if r.round > plan.plan.rounds {
                    Some(format!("the plan has only {} rounds", plan.plan.rounds))
                } else {
                    None
                };
                match problem {
                    Some(message) => self.flag(index, ViolationKind::Round, message),
                    None => {
                        plan.open = Some(OpenRound {
                            round: r.round,
                            contributions: Vec::new(),
                            contributors: HashSet::new(),
                        });
                    }
                }
            }
            Statement::DatasetPrepared(p) => self.dataset_prepared(index, author, p),
            Statement::TextDatasetPrepared(t) => {
                self.dataset_prepared(index, author, &t.dataset);
                if t.text.total_documents() == 0 && t.text.total_removed() > 0 {
                    let message = format!(
                        "{} spans said removed from free text with no document let out",
                        t.text.total_removed()
                    );
                    self.flag(index, ViolationKind::Plan, message);
                }
            }
            Statement::Contribution(c) => self.contribution(index, hash, author, c),
            Statement::RoundAggregated(a) => self.aggregate(index, a),
            Statement::ModelReleased(m) => {
                let Some(plan) = plan_or_flag(&mut self.plans, self.report, index, &m.plan) else {
                    return;
                };
                if !plan.outputs.contains(&m.model) {
                    let message = format!(
                        "model {} is not the output of an aggregate of the plan",
                        m.model
                    );
                    self.flag(index, ViolationKind::Release, message);
                }
            }
            Statement::Objection(o) => {
                if !self.seen.contains_key(&o.entry) || o.entry == hash {
                    let message = format!("the objected entry {} is not in the log", o.entry);
                    self.flag(index, ViolationKind::Objection, message);
                }
            }
            Statement::Genesis(_)
            | Statement::KeyEnrolled(_)
            | Statement::KeyRotated(_)
            | Statement::KeyRevoked(_)
            | Statement::PolicyUpdate(_) => {}
        }
    }

    fn plan_registered(&mut self, index: u64, hash: Hash, p: &PlanRegistered) {
        if self.plans.contains_key(&p.plan) {
            self.flag(
                index,
                ViolationKind::Plan,
                format!("plan {} is registered twice", p.plan),
            );
            return;
        }
        if p.rounds == 0 {
            self.flag(index, ViolationKind::Plan, "the plan has no round".into());
        }
        for party in p.eligible.parties() {
            let enrolled = self.registry.role(party) == Some(Role::Hospital)
                && self.registry.key(party).is_some();
            if !enrolled {
                let message = format!("eligible party {party} is not an enrolled hospital");
                self.flag(index, ViolationKind::Plan, message);
            }
        }
        self.plans.insert(
            p.plan,
            PlanState {
                registration: hash,
                plan: p.clone(),
                approvals: HashSet::new(),
                datasets: HashMap::new(),
                contributors: HashSet::new(),
                last_round: 0,
                open: None,
                outputs: HashSet::new(),
                spent: HashMap::new(),
            },
        );
    }

    fn dataset_prepared(&mut self, index: u64, author: &PartyId, p: &DatasetPrepared) {
        let Some(plan) = plan_or_flag(&mut self.plans, self.report, index, &p.plan) else {
            return;
        };
        let mut problems = Vec::new();
        if p.registration != plan.registration {
            problems.push("the dataset statement names another registration entry".to_string());
        }
        if !plan.plan.eligible.contains(author) {
            problems.push(format!("{author} is not eligible for the plan"));
        }
        if let Some(first) = plan.datasets.get(author) {
            problems.push(format!(
                "{author} already stated its dataset for the plan at index {first}"
            ));
        } else {
            plan.datasets.insert(author.clone(), index);
        }
        if plan.contributors.contains(author) {
            problems.push(format!(
                "{author} stated its dataset after contributing to the plan"
            ));
        }
        for message in problems {
            self.flag(index, ViolationKind::Plan, message);
        }
    }

    fn contribution(&mut self, index: u64, hash: Hash, author: &PartyId, c: &Contribution) {
        let Some(plan) = plan_or_flag(&mut self.plans, self.report, index, &c.plan) else {
            return;
        };
        plan.contributors.insert(author.clone());
        let mut problems = Vec::new();
        if !plan.plan.eligible.contains(author) || !plan.approvals.contains(author) {
            problems.push((
                ViolationKind::Plan,
                format!("{author} is not an eligible hospital that approved the plan"),
            ));
        }
        if c.code_hash != plan.plan.code_hash {
            problems.push((
                ViolationKind::CodeHash,
                format!(
                    "code {} run instead of the plan's {}",
                    c.code_hash, plan.plan.code_hash
                ),
            ));
        }
        let previous = plan.spent.get(author).copied().unwrap_or_default();
        let most = previous.checked_add(c.epsilon_round);
        let adds_up = c.epsilon_total >= previous
            && c.epsilon_total >= c.epsilon_round
            && most.is_some_and(|m| c.epsilon_total <= m);
        if !adds_up {
            problems.push((
                ViolationKind::Budget,
                format!(
                    "epsilon total {} is not between the previous total {previous} and it plus \
                     this round's {}",
                    c.epsilon_total, c.epsilon_round
                ),
            ));
        }
        // After a total that does not add up, assume the most it could have spent.
        let spent = match most {
            Some(m) if !adds_up => m.max(c.epsilon_total),
            _ => c.epsilon_total,
        };
        if spent > plan.plan.dp_budget.epsilon {
            problems.push((
                ViolationKind::Budget,
                format!(
                    "{author} has spent epsilon {spent}, over the plan's budget of {}",
                    plan.plan.dp_budget.epsilon
                ),
            ));
        }
        plan.spent.insert(author.clone(), spent);
        match plan.open.as_mut() {
            Some(open) if open.round == c.round => {
                if open.contributors.insert(author.clone()) {
                    open.contributions.push(hash);
                    self.contributions.insert(
                        hash,
                        ContributionRecord {
                            index,
                            plan: c.plan,
                            round: c.round,
                            samples: c.samples,
                            consumed: false,
                        },
                    );
                } else {
                    problems.push((
                        ViolationKind::DuplicateContribution,
                        format!("{author} already contributed to round {}", c.round),
                    ));
                }
            }
            _ => problems.push((
                ViolationKind::Round,
                format!("contribution to round {}, which is not open", c.round),
            )),
        }
        for (kind, message) in problems {
            self.flag(index, kind, message);
        }
    }

    fn aggregate(&mut self, index: u64, a: &RoundAggregated) {
        let Some(plan) = self.plans.get_mut(&a.plan) else {
            let message = format!("plan {} is not registered", a.plan);
            self.flag(index, ViolationKind::Plan, message);
            return;
        };
        let open = match plan.open.take() {
            Some(open) if open.round == a.round => open,
            other => {
                plan.open = other;
                let message = format!("aggregate of round {}, which is not open", a.round);
                self.flag(index, ViolationKind::Round, message);
                return;
            }
        };
        plan.last_round = a.round;
        plan.outputs.insert(a.output_model);
        let strategy = plan.plan.strategy;
        let mut problems = Vec::new();
        let mut listed = HashSet::new();
        let mut buckets = Vec::new();
        for consumed in &a.consumed {
            let record = self.contributions.get_mut(&consumed.contribution);
            match record {
                Some(r) if r.plan == a.plan && r.round == a.round => {
                    if !listed.insert(consumed.contribution) || r.consumed {
                        problems.push(format!(
                            "contribution at index {} is consumed twice",
                            r.index
                        ));
                    }
                    r.consumed = true;
                    buckets.push(r.samples);
                }
                _ => problems.push(format!(
                    "{} is not a contribution to round {} of the plan",
                    consumed.contribution, a.round
                )),
            }
        }
        for hash in &open.contributions {
            if !listed.contains(hash) {
                let at = self.contributions.get(hash).map_or(0, |r| r.index);
                problems.push(format!("the contribution at index {at} is not consumed"));
            }
        }
        if buckets.len() == a.consumed.len() {
            let expected = Weight::for_buckets(strategy, &buckets);
            let given: Vec<Weight> = a.consumed.iter().map(|c| c.weight).collect();
            if expected != given {
                problems.push(format!(
                    "weights {:?} do not follow from the sample buckets ({strategy}: {:?})",
                    given.iter().map(|w| w.ppb()).collect::<Vec<_>>(),
                    expected.iter().map(|w| w.ppb()).collect::<Vec<_>>()
                ));
            }
        }
        for message in problems {
            self.flag(index, ViolationKind::Aggregate, message);
        }
    }
}
