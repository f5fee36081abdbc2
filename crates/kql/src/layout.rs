//! A plan bound to a row type's layout ([`crate::Row::layout`]): each input column read by its
//! place instead of its name, and, when the output only passes input columns through, which
//! places it keeps.

use crate::Type;
use crate::compile::{Plan, PlanSource, Slot, Stage};

/// The place of an input column that the layout does not have: read by name.
pub(crate) const ELSEWHERE: u32 = u32::MAX;

/// A row layout: column names and types by place.
pub(crate) type Layout = &'static [(&'static str, Type)];

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    layout: Layout,
    /// For each input column of the plan, its place in the layout, or [`ELSEWHERE`].
    pub(crate) reads: Box<[u32]>,
    /// When the plan only filters and drops columns: whether each place is in the output.
    pub(crate) kept: Option<Box<[bool]>>,
}

impl Binding {
    pub(crate) fn new(plan: &Plan, layout: Layout) -> Binding {
        let reads: Box<[u32]> = plan
            .input
            .iter()
            .map(|(name, _)| {
                layout
                    .iter()
                    .position(|(n, _)| n == name)
                    .and_then(|p| u32::try_from(p).ok())
                    .filter(|p| *p != ELSEWHERE)
                    .unwrap_or(ELSEWHERE)
            })
            .collect();
        let kept = passed_through(plan, layout, &reads);
        Binding {
            layout,
            reads,
            kept,
        }
    }

    /// Whether this binding is for `layout` (the same static list).
    pub(crate) fn is_for(&self, layout: Layout) -> bool {
        std::ptr::eq(self.layout, layout)
    }
}

/// The places an output keeps when it is the input's layout columns unchanged (same names,
/// types and values, in layout order) and the stages only filter: then a kept row is its
/// layout columns at those places, plus the output's columns outside the layout (read by name,
/// after or between them in schema order).
fn passed_through(plan: &Plan, layout: Layout, reads: &[u32]) -> Option<Box<[bool]>> {
    if !matches!(plan.source, PlanSource::Input)
        || !plan.stages.iter().all(|s| matches!(s, Stage::Filter(_)))
    {
        return None;
    }
    let mut kept = vec![false; layout.len()];
    let mut last_place = None;
    for col in &plan.output {
        let Slot::Input(i) = col.slot else {
            return None;
        };
        let (name, ty) = plan.input.get(i)?;
        // Renamed, or read in another type than the row's own (converted when read).
        if col.name != *name || col.ty != *ty {
            return None;
        }
        let place = *reads.get(i)?;
        if place == ELSEWHERE {
            continue;
        }
        let place = place as usize;
        if layout.get(place)?.1 != *ty || last_place.is_some_and(|l| place <= l) {
            return None;
        }
        last_place = Some(place);
        kept[place] = true;
    }
    Some(kept.into_boxed_slice())
}
