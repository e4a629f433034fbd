//! Placeholder: the recording benchmark is written on the core branch.
//! Cargo refuses to load the workspace without this file because the root
//! manifest declares `[[bench]] name = "recording"`.

fn main() {}
