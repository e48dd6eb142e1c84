// An infinite loop the optimiser must keep (an empty `loop {}` is kept too, but the counter
// makes the work visible).
fn Z10500(Z10500K1: &str) -> String {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter + 1);
        if counter == 0 {
            return Z10500K1.to_owned();
        }
    }
}
