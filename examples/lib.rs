//! Runnable examples of the mcas-forward crates; see the `[[example]]` entries of this
//! package's manifest (`cargo run -p mcas-examples --example <name>`). The library is
//! empty: it only gives the package a target.
