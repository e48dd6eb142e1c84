// A 256 MiB zeroed static: nothing to store in the artifact, but the module's memory would
// have to start at 256 MiB, past the call's memory limit.
static mut BIG: [u8; 256 << 20] = [0; 256 << 20];

fn Z10500(Z10500K1: &str) -> String {
    let index = std::hint::black_box(Z10500K1.len());
    unsafe {
        let big = &mut *std::ptr::addr_of_mut!(BIG);
        big[index] = 1;
        format!("{}", big[index])
    }
}
