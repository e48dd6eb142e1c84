// Lists what the guest sees of its environment: variables, well-known ones, its arguments
// (one: the module's name) and its working directory.
fn Z10500(_Z10500K1: &str) -> String {
    let count = std::env::vars_os().count();
    let path = std::env::var_os("PATH").is_some();
    let home = std::env::var_os("HOME").is_some();
    let args = std::env::args_os().count();
    let cwd = std::env::current_dir().map_err(|e| e.to_string());
    format!("{count} variables; PATH {path}; HOME {home}; {args} arguments; cwd {cwd:?}")
}
