//! Compile-time checks of `#[instrument_dwcp]`: the forms that must compile
//! (`tests/ui/instrument/pass`) and the argument errors, with the exact diagnostics
//! (`tests/ui/instrument/fail/*.stderr`; regenerate with
//! `TRYBUILD=overwrite cargo test --test instrument_ui` and review every changed file).

#[test]
fn instrument_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/instrument/pass/*.rs");
    t.compile_fail("tests/ui/instrument/fail/*.rs");
}
