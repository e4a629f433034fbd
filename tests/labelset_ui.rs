//! Compile-time checks of `#[derive(LabelSet)]` / `#[derive(LabelValue)]` and the typed
//! family API: what must compile (`tests/ui/pass`) and what must not, with the exact
//! diagnostics (`tests/ui/fail/*.stderr`; regenerate with
//! `TRYBUILD=overwrite cargo test --test labelset_ui` and review every changed file).

#[test]
fn labelset_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
