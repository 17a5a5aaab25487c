fn main() {
    std::process::exit(sipwright::cli::main());
}
