//! The examples' shared command line (`examples/common/cli.rs`): the flags a script
//! needs (several addresses, a higher connection limit) and the log filter that keeps
//! tungstenite's payload-printing lines out.

#[path = "../examples/common/cli.rs"]
mod cli;

use cli::Cli;

fn parse(args: &[&str]) -> Result<Cli, String> {
    Cli::try_parse(args.iter().map(|a| a.to_string()), &["rate"], "usage".into())
}

#[test]
fn max_connections_and_repeated_binds_reach_the_builder() {
    let cli =
        parse(&["--bind", "127.0.0.1:0", "--bind", "[::1]:0", "--max-connections", "1000", "--rate", "5"]).unwrap();
    assert_eq!(cli.bind, ["127.0.0.1:0", "[::1]:0"]);
    assert_eq!(cli.max_connections, Some(1000));
    assert_eq!(parse(&["--max-connections-per-ip", "none"]).unwrap().max_connections_per_ip, Some(None));
    assert_eq!(parse(&["--max-connections-per-ip", "500"]).unwrap().max_connections_per_ip, Some(Some(500)));
    assert_eq!(cli.get("rate", 1u32), 5);
    let dir = std::env::temp_dir().join(format!("tinywss-cli-{}", std::process::id()));
    let certs = tinywss::DevelopmentCertificate::generate(&dir).unwrap();
    let cli =
        parse(&["--bind", "127.0.0.1:0", "--cert", certs.cert.to_str().unwrap(), "--key", certs.key.to_str().unwrap()])
            .unwrap();
    let config = cli.builder().unwrap().build().unwrap();
    assert_eq!(config.bind_addrs(), ["127.0.0.1:0"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn deflate_flags_choose_the_compression_mode() {
    assert_eq!(parse(&[]).unwrap().compression, None);
    let cli = parse(&["--deflate", "--max-connections", "3"]).unwrap();
    assert_eq!((cli.compression, cli.max_connections), (Some(tinywss::Compression::no_context_takeover()), Some(3)));
    let cli = parse(&["--deflate-takeover", "10"]).unwrap();
    assert_eq!(cli.compression, Some(tinywss::Compression::context_takeover(10)));
}

#[test]
fn mistakes_are_named() {
    assert_eq!(
        parse(&["--max-connections", "many"]).err().unwrap(),
        "--max-connections: \"many\" is not a number of connections"
    );
    assert_eq!(
        parse(&["--cert", "a.pem"]).map(|cli| cli.builder().err()).unwrap().unwrap(),
        "--cert and --key go together"
    );
    assert_eq!(parse(&["--bogus", "1"]).err().unwrap(), "unknown option --bogus");
}

#[test]
fn tungstenite_stays_at_info_unless_named() {
    assert_eq!(cli::log_filter(None), "info,tungstenite=info");
    assert_eq!(cli::log_filter(Some("debug")), "debug,tungstenite=info");
    assert_eq!(cli::log_filter(Some("trace")), "trace,tungstenite=info");
    assert_eq!(cli::log_filter(Some("debug,tungstenite=trace")), "debug,tungstenite=trace");
    assert_eq!(cli::log_filter(Some("  ")), "info,tungstenite=info");
}
