//! Compile-time checks of the catalog's typed label sets: each metric takes exactly its own
//! labels (`tests/ui/catalog/pass`), and a label it does not have, a missing label, another
//! metric's label set or a value of the wrong type does not compile, with the exact
//! diagnostics (`tests/ui/catalog/fail/*.stderr`; regenerate with
//! `TRYBUILD=overwrite cargo test --test catalog_ui` and review every changed file).

#[test]
fn catalog_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/catalog/pass/*.rs");
    t.compile_fail("tests/ui/catalog/fail/*.rs");
}
