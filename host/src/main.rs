fn main() -> std::process::ExitCode {
    nas_host::cli::main()
}
