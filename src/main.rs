//! The `zeval` command line.
fn main() {
    println!("zeval");
}
