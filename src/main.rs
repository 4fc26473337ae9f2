fn main() -> std::process::ExitCode {
    certgen::run()
}
