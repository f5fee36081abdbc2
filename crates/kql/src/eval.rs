//! The evaluator: runs a compiled plan on one row.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value as Json;

use crate::Row;
use crate::ast::BinOp;
use crate::compile::{CExpr, Plan, Stage};
use crate::functions::{self, Builtin};
use crate::value::{Type, Value, coerce, json_scalar};
use regex::Regex;

/// What an expression sees: the input row, the computed slots and the clock.
pub(crate) struct Env<'a, 's> {
    pub(crate) plan: &'a Plan,
    pub(crate) row: &'a dyn Row,
    /// The places of the plan's input columns in the row's layout, when bound to it.
    pub(crate) reads: Option<&'a [u32]>,
    pub(crate) slots: &'s [Value<'a>],
    pub(crate) now: i64,
}

impl<'a> Env<'a, '_> {
    pub(crate) fn eval(&self, e: &'a CExpr) -> Value<'a> {
        match e {
            CExpr::Const(v) => v.reborrow(),
            CExpr::Input(i) => match self.read(*i) {
                Some(v) => coerce(v, self.plan.input[*i].1),
                None if self.plan.input[*i].1 == Type::String => Value::String(Cow::Borrowed("")),
                None => Value::Null,
            },
            CExpr::Slot(i) => self.slots.get(*i).cloned().unwrap_or(Value::Null),
            CExpr::Neg(x) => match self.eval(x).undyn() {
                Value::Int(v) => Value::Int(v.wrapping_neg()),
                Value::Long(v) => Value::Long(v.wrapping_neg()),
                Value::Real(v) => Value::Real(-v),
                Value::Timespan(v) => Value::Timespan(v.wrapping_neg()),
                _ => Value::Null,
            },
            CExpr::Bin(BinOp::And, a, b) => match self.eval(a).as_bool() {
                Some(false) => Value::Bool(false),
                l => match (l, self.eval(b).as_bool()) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
            },
            CExpr::Bin(BinOp::Or, a, b) => match self.eval(a).as_bool() {
                Some(true) => Value::Bool(true),
                l => match (l, self.eval(b).as_bool()) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
            },
            CExpr::Bin(op, a, b) => binary(*op, self.eval(a), self.eval(b)),
            CExpr::Str {
                kind,
                cs,
                negated,
                lhs,
                rhs,
            } => {
                let l = self.eval(lhs);
                let r = self.eval(rhs);
                let (ls, rs) = (l.to_kusto_string(), r.to_kusto_string());
                let m = functions::str_match(*kind, *cs, &ls, &rs);
                Value::Bool(m != *negated)
            }
            CExpr::In {
                lhs,
                list,
                negated,
                ci,
            } => {
                let l = self.eval(lhs).undyn();
                if l.is_null() && !*negated {
                    return Value::Bool(false);
                }
                let mut found = false;
                for item in list {
                    // A constant scalar compares as it is (`undyn` keeps it).
                    if let CExpr::Const(c) = item
                        && !matches!(c, Value::Dynamic(_))
                    {
                        if in_eq(&l, c, *ci) {
                            found = true;
                            break;
                        }
                        continue;
                    }
                    let v = self.eval(item);
                    match v {
                        Value::Dynamic(ref d) if d.is_array() => {
                            if let Json::Array(items) = &**d
                                && items.iter().any(|j| in_eq(&l, &json_scalar(j), *ci))
                            {
                                found = true;
                            }
                        }
                        v => {
                            if in_eq(&l, &v.undyn(), *ci) {
                                found = true;
                            }
                        }
                    }
                    if found {
                        break;
                    }
                }
                Value::Bool(found != *negated)
            }
            CExpr::Regex(l, re) => {
                let l = self.eval(l);
                Value::Bool(re.is_match(&l.to_kusto_string()))
            }
            CExpr::Call(f, args) => self.call(*f, args, None),
            CExpr::CallRe(f, re, args) => self.call(*f, args, Some(re)),
            CExpr::Member(x, name) => member(self.eval(x), name),
            CExpr::Index(x, i) => {
                let base = self.eval(x);
                match self.eval(i).undyn() {
                    Value::Long(n) => index(base, n),
                    Value::Int(n) => index(base, i64::from(n)),
                    Value::String(s) => member(base, &s),
                    _ => Value::Null,
                }
            }
            CExpr::Iif(c, a, b) => {
                if self.eval(c).as_bool() == Some(true) {
                    self.eval(a)
                } else {
                    self.eval(b)
                }
            }
            CExpr::Case(pairs, e) => {
                for (p, v) in pairs {
                    if self.eval(p).as_bool() == Some(true) {
                        return self.eval(v);
                    }
                }
                self.eval(e)
            }
            CExpr::Now(off) => match off {
                None => Value::DateTime(self.now),
                Some(o) => match self.eval(o).undyn() {
                    Value::Timespan(t) => Value::DateTime(self.now.saturating_add(t)),
                    _ => Value::Null,
                },
            },
            CExpr::Ago(o) => match self.eval(o).undyn() {
                Value::Timespan(t) => Value::DateTime(self.now.saturating_sub(t)),
                _ => Value::Null,
            },
        }
    }
}

fn in_eq(a: &Value<'_>, b: &Value<'_>, ci: bool) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            if ci {
                functions::eq_ci(x, y)
            } else {
                x == y
            }
        }
        _ => compare(a, b) == Some(Ordering::Equal),
    }
}

fn member<'a>(base: Value<'a>, name: &str) -> Value<'a> {
    match base {
        Value::Dynamic(Cow::Borrowed(j)) => match j.get(name) {
            Some(v) => Value::Dynamic(Cow::Borrowed(v)),
            None => Value::Null,
        },
        Value::Dynamic(Cow::Owned(j)) => match j.get(name) {
            Some(v) => Value::Dynamic(Cow::Owned(v.clone())),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

fn index<'a>(base: Value<'a>, n: i64) -> Value<'a> {
    let pick = |arr: &Vec<Json>| -> Option<usize> {
        let len = arr.len() as i64;
        let k = if n < 0 { len + n } else { n };
        (0..len).contains(&k).then_some(k as usize)
    };
    match base {
        Value::Dynamic(Cow::Borrowed(Json::Array(a))) => match pick(a) {
            Some(k) => Value::Dynamic(Cow::Borrowed(&a[k])),
            None => Value::Null,
        },
        Value::Dynamic(Cow::Owned(Json::Array(a))) => match pick(&a) {
            Some(k) => Value::Dynamic(Cow::Owned(a[k].clone())),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// Orders two values of comparable types (numbers among themselves, strings, datetimes,
/// timespans, bools, guids); `None` when either is null or the types do not compare.
pub(crate) fn compare(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    use Value::*;
    match (a, b) {
        (Dynamic(_), _) | (_, Dynamic(_)) => {
            let (x, y) = (a.clone().undyn(), b.clone().undyn());
            match (&x, &y) {
                (Dynamic(p), Dynamic(q)) => (p == q).then_some(Ordering::Equal),
                (Dynamic(_), _) | (_, Dynamic(_)) => None,
                _ => compare(&x, &y),
            }
        }
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Int(x), Long(y)) => Some(i64::from(*x).cmp(y)),
        (Long(x), Int(y)) => Some(x.cmp(&i64::from(*y))),
        (Long(x), Long(y)) => Some(x.cmp(y)),
        (Real(_), Int(_) | Long(_) | Real(_)) | (Int(_) | Long(_), Real(_)) => {
            let x = functions::to_real(a)?;
            let y = functions::to_real(b)?;
            x.partial_cmp(&y)
        }
        (String(x), String(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (DateTime(x), DateTime(y)) | (Timespan(x), Timespan(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Guid(x), Guid(y)) => Some(x.cmp(y)),
        (Guid(x), String(s)) | (String(s), Guid(x)) => {
            crate::value::parse_guid(s).map(|g| g.cmp(x))
        }
        _ => None,
    }
}

fn binary<'a>(op: BinOp, a: Value<'a>, b: Value<'a>) -> Value<'a> {
    match op {
        BinOp::Eq | BinOp::Ne => {
            let (an, bn) = (a.is_null(), b.is_null());
            if an && bn {
                return Value::Null;
            }
            if an || bn {
                return Value::Bool(op == BinOp::Ne);
            }
            let eq = match (&a, &b) {
                (Value::String(x), Value::String(y)) => x == y,
                _ => match (a.clone().undyn(), b.clone().undyn()) {
                    (Value::String(x), y) | (y, Value::String(x))
                        if !matches!(y, Value::String(_) | Value::Guid(_)) =>
                    {
                        x == y.to_kusto_string()
                    }
                    (x, y) => compare(&x, &y) == Some(Ordering::Equal),
                },
            };
            Value::Bool(eq == (op == BinOp::Eq))
        }
        BinOp::EqCi | BinOp::NeCi => {
            let eq = functions::eq_ci(&a.to_kusto_string(), &b.to_kusto_string());
            Value::Bool(eq == (op == BinOp::EqCi))
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match compare(&a, &b) {
            None => Value::Null,
            Some(o) => Value::Bool(match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
        },
        _ => functions::arith(op, a.undyn(), b.undyn()),
    }
}

/// Runs the plan's stages on one row, filling `slots`; false when a `where` dropped it.
pub(crate) fn run_stages<'a>(
    plan: &'a Plan,
    row: &'a dyn Row,
    reads: Option<&'a [u32]>,
    slots: &mut [Value<'a>],
    now: i64,
) -> bool {
    for stage in &plan.stages {
        match stage {
            Stage::Filter(p) => {
                let env = Env {
                    plan,
                    row,
                    reads,
                    slots,
                    now,
                };
                if env.eval(p).as_bool() != Some(true) {
                    return false;
                }
            }
            Stage::Compute(items) => {
                for (slot, e) in items {
                    let env = Env {
                        plan,
                        row,
                        reads,
                        slots,
                        now,
                    };
                    let v = env.eval(e);
                    slots[*slot] = v;
                }
            }
            Stage::Parse {
                source,
                regex,
                outputs,
                relaxed,
            } => {
                let env = Env {
                    plan,
                    row,
                    reads,
                    slots,
                    now,
                };
                let text = env.eval(source);
                let text = text.to_kusto_string();
                let caps = regex.captures(&text);
                let mut values = Vec::with_capacity(outputs.len());
                let mut all_ok = true;
                for (k, (_, ty)) in outputs.iter().enumerate() {
                    let v = match caps.as_ref().and_then(|c| c.get(k + 1)) {
                        Some(m) => {
                            let s = Value::String(Cow::Owned(m.as_str().to_string()));
                            let v = coerce(s, *ty);
                            if v.is_null() {
                                all_ok = false;
                            }
                            v
                        }
                        None => {
                            all_ok = false;
                            Value::Null
                        }
                    };
                    values.push(v);
                }
                drop(caps);
                for ((slot, ty), v) in outputs.iter().zip(values) {
                    let v = if (!all_ok && !relaxed) || v.is_null() {
                        if *ty == Type::String {
                            Value::String(Cow::Borrowed(""))
                        } else {
                            Value::Null
                        }
                    } else {
                        v
                    };
                    slots[*slot] = v;
                }
            }
        }
    }
    true
}

/// Runs the plan on one row; `None` when a `where` dropped it.
pub(crate) fn run<'a>(
    plan: &'a Plan,
    row: &'a dyn Row,
    reads: Option<&'a [u32]>,
    mut slots: Vec<Value<'a>>,
    now: i64,
) -> Option<Vec<Value<'a>>> {
    if !run_stages(plan, row, reads, &mut slots, now) {
        return None;
    }
    let env = Env {
        plan,
        row,
        reads,
        slots: &slots,
        now,
    };
    Some(
        plan.output
            .iter()
            .map(|c| {
                let v = match c.slot {
                    crate::compile::Slot::Input(i) => env.eval_input(i),
                    crate::compile::Slot::Computed(i) => {
                        slots.get(i).cloned().unwrap_or(Value::Null)
                    }
                };
                match (c.ty, v) {
                    (Type::String, Value::Null) => Value::String(Cow::Borrowed("")),
                    (_, v) => v,
                }
            })
            .collect(),
    )
}

impl<'a> Env<'a, '_> {
    /// Evaluates the arguments (on the stack when there are at most four) and calls `f`.
    fn call(&self, f: Builtin, args: &'a [CExpr], re: Option<&Regex>) -> Value<'a> {
        if args.len() <= 4 {
            let mut buf = [Value::Null, Value::Null, Value::Null, Value::Null];
            for (slot, a) in buf.iter_mut().zip(args) {
                *slot = self.eval(a);
            }
            f(&buf[..args.len()], re)
        } else {
            let vals: Vec<Value<'a>> = args.iter().map(|a| self.eval(a)).collect();
            f(&vals, re)
        }
    }

    /// Output column `c` once the stages ran: as [`run`] gives it, a computed value borrowed
    /// from its slot.
    pub(crate) fn output(&self, c: &crate::compile::Col) -> Value<'_> {
        let v = match c.slot {
            crate::compile::Slot::Input(i) => self.eval_input(i),
            crate::compile::Slot::Computed(i) => {
                self.slots.get(i).map_or(Value::Null, Value::reborrow)
            }
        };
        match (c.ty, v) {
            (Type::String, Value::Null) => Value::String(Cow::Borrowed("")),
            (_, v) => v,
        }
    }

    fn eval_input(&self, i: usize) -> Value<'a> {
        match self.read(i) {
            Some(v) => coerce(v, self.plan.input[i].1),
            None => Value::Null,
        }
    }

    /// Input column `i` as the row gives it: by its place in the row's layout when the plan
    /// is bound to it, else by name.
    #[inline]
    fn read(&self, i: usize) -> Option<Value<'a>> {
        if let Some(reads) = self.reads
            && let Some(&place) = reads.get(i)
            && place != crate::layout::ELSEWHERE
        {
            return self.row.value_at(place as usize);
        }
        self.row.get(&self.plan.input[i].0)
    }
}
