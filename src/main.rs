fn main() -> std::process::ExitCode {
    flamingo_eval::cli::main()
}
