extern crate proc_macro;

fn Z10500(Z10500K1: &str) -> String {
    Z10500K1.to_owned()
}
