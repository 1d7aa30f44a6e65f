//! The shipped Spin manifests run by `smtp-mailer serve --app`, the way
//! `spin up` runs them: the variables' defaults and required ones, the
//! allow-list derived from them, HTTP without Redis, the Redis app riding
//! out a Redis that is absent or restarts, implicit TLS and a private CA,
//! a forbidden destination; and the app composed by the composers of
//! Spin 3.x (wac-graph 0.8) and 4.0 (wac-graph 0.10).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smtp_mailer_tests::serve::{post_send, repository_file, request, ServeProcess, API_KEY};
use smtp_mailer_tests::servers::{Aiosmtpd, AiosmtpdOptions, Redis};
use smtp_mailer_tests::support::{parse, run_cli};
use smtp_mailer_tests::tls::TestPki;
use smtp_mailer_tests::unanswered::closed_port;

const WAIT: Duration = Duration::from_secs(20);
const CHANNEL: &str = "smtp-mailer.send";

fn message(subject: &str) -> String {
    format!(
        r#"{{"from": "app@example.test", "to": "ada@example.test", "subject": "{subject}", "text": "Hi."}}"#
    )
}

/// The variables of a plaintext relay on loopback `port`, and the API key.
fn plaintext_relay(port: &str) -> Vec<(&'static str, String)> {
    vec![
        ("smtp_host", "mail.example.test".into()),
        ("smtp_connect_address", "127.0.0.1".into()),
        ("smtp_port", port.into()),
        ("smtp_security", "plaintext-insecure".into()),
        ("api_key", API_KEY.into()),
    ]
}

fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// A copy of a shipped manifest in `dir`, edited by `edit`, with its paths
/// made absolute (they name the repository's build output).
fn edited_manifest(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repository_file(name)).expect("the shipped manifest");
    let root = repository_file("");
    let text = text.replace("\"target/", &format!("\"{}/target/", root.display()));
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).expect("the edited manifest");
    path
}

#[test]
fn the_shipped_http_manifest_sends_without_any_redis() {
    let smtp = Aiosmtpd::start();
    let vars = plaintext_relay(&smtp.port().to_string());
    // No --allow-outbound: the manifest's own template allows the relay.
    let serve = ServeProcess::start_app(&repository_file("spin.toml"), &pairs(&vars), &[]);
    let health = request(serve.address(), "GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        message("no redis").as_bytes(),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let got = smtp.wait_for(1, WAIT);
    assert_eq!(parse(&got[0].data).subject(), Some("no redis"));
}

#[test]
fn required_variables_left_unset_stop_serve_at_start_naming_them() {
    let out = run_cli(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--app",
            repository_file("spin.toml").to_str().unwrap(),
        ],
        None,
        &[("SPIN_VARIABLE_SMTP_CONNECT_ADDRESS", "127.0.0.1")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SPIN_VARIABLE_SMTP_HOST"), "{stderr}");
    assert!(stderr.contains("SPIN_VARIABLE_API_KEY"), "{stderr}");
    assert!(!stderr.contains("SMTP_CONNECT_ADDRESS"), "{stderr}");
}

#[test]
fn implicit_tls_takes_the_port_spin_takes_and_a_private_ca_from_a_variable() {
    let pki = TestPki::generate();
    let smtp = Aiosmtpd::start_with(AiosmtpdOptions {
        implicit_tls: Some(pki.good.clone()),
        ..AiosmtpdOptions::default()
    });
    let mut vars = vec![
        ("smtp_host", "localhost".to_string()),
        ("smtp_connect_address", "127.0.0.1".into()),
        ("smtp_security", "implicit-tls".into()),
        ("api_key", API_KEY.into()),
    ];
    // No smtp_port: the manifest's default, 587, applies whatever the
    // security mode, as on Spin (which always applies defaults).
    let serve = ServeProcess::start_app(&repository_file("spin.toml"), &pairs(&vars), &[]);
    let answer = post_send(serve.address(), Some(API_KEY), message("to 587").as_bytes());
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert_ne!(answer.status, 200, "{body}");
    assert!(body.contains("127.0.0.1:587"), "{body}");
    drop(serve);

    vars.push(("smtp_port", smtp.port().to_string()));
    // Without the private CA the certificate is refused, naming why.
    let serve = ServeProcess::start_app(&repository_file("spin.toml"), &pairs(&vars), &[]);
    let answer = post_send(serve.address(), Some(API_KEY), message("no CA").as_bytes());
    assert_eq!(
        answer.status,
        502,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["error"]["kind"], "tls");
    drop(serve);

    // With it (newlines written out as `\n`, as a variable often carries
    // PEM): delivered over TLS.
    vars.push(("smtp_ca_pem", pki.ca_pem.replace('\n', "\\n")));
    let serve = ServeProcess::start_app(&repository_file("spin.toml"), &pairs(&vars), &[]);
    let answer = post_send(
        serve.address(),
        Some(API_KEY),
        message("private CA").as_bytes(),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let got = smtp.wait_for(1, WAIT);
    assert!(got[0].tls);
    assert_eq!(parse(&got[0].data).subject(), Some("private CA"));
}

#[test]
fn a_destination_the_app_may_not_reach_is_a_permanent_named_error() {
    let smtp = Aiosmtpd::start();
    let vars = plaintext_relay(&smtp.port().to_string());
    let dir = tempfile::tempdir().unwrap();
    // The mailer dependency no longer inherits the allowed hosts: Spin then
    // gives it no network, and so does serve.
    let manifest = edited_manifest(dir.path(), "spin.toml", |text| {
        text.replace("dependencies_inherit_configuration = true\n", "")
    });
    let answers = [
        {
            let serve = ServeProcess::start_app(&manifest, &pairs(&vars), &[]);
            post_send(serve.address(), Some(API_KEY), message("denied").as_bytes())
        },
        {
            // The shipped manifest with an allow-list naming another port.
            let other = format!("tcp://127.0.0.1:{}", closed_port());
            let serve = ServeProcess::start_app(
                &repository_file("spin.toml"),
                &pairs(&vars),
                &["--allow-outbound", &other],
            );
            post_send(serve.address(), Some(API_KEY), message("denied").as_bytes())
        },
    ];
    for answer in answers {
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, 500, "{body}");
        assert_eq!(answer.header("retry-after"), None);
        let error = &answer.json()["error"];
        assert_eq!(error["kind"], "not-allowed", "{body}");
        assert_eq!(error["retry"], "permanent", "{body}");
        let text = error["message"].as_str().unwrap_or("");
        assert!(
            text.contains("does not allow a connection to 127.0.0.1"),
            "{body}"
        );
        assert!(text.contains("allowed_outbound_hosts"), "{body}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(smtp.messages().is_empty(), "the relay saw nothing");
}

/// Publishes `payload` until the app's subscription hears it.
fn publish_when_subscribed(redis: &Redis, payload: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.publish(CHANNEL, payload) == 0 {
        assert!(
            Instant::now() < deadline,
            "serve never subscribed to {CHANNEL}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn http_stays_up_while_redis_is_absent_or_restarts_and_the_redis_app_resumes() {
    let smtp = Aiosmtpd::start();
    let port = smtp.port().to_string();
    let mut vars = plaintext_relay(&port);
    let http = ServeProcess::start_app(&repository_file("spin.toml"), &pairs(&vars), &[]);

    // The Redis app starts while no Redis listens on its address.
    let redis_port = closed_port();
    let redis_address = format!("redis://127.0.0.1:{redis_port}");
    vars.push(("redis_address", redis_address));
    let mut redis_app =
        ServeProcess::start_app(&repository_file("spin-redis.toml"), &pairs(&vars), &[]);
    let answer = post_send(
        http.address(),
        Some(API_KEY),
        message("redis absent").as_bytes(),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        redis_app.is_running(),
        "the Redis app gave up without Redis"
    );

    let redis_dir = tempfile::tempdir().unwrap();
    let redis = Redis::start_durable(redis_dir.path(), Some(redis_port));
    publish_when_subscribed(&redis, message("first over redis").as_bytes());
    smtp.wait_for(2, WAIT);

    // Redis stops: HTTP goes on; the Redis app waits for it.
    redis.kill();
    let answer = post_send(
        http.address(),
        Some(API_KEY),
        message("redis stopped").as_bytes(),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(redis_app.is_running());

    let redis = Redis::start_durable(redis_dir.path(), Some(redis_port));
    publish_when_subscribed(&redis, message("after the restart").as_bytes());
    let got = smtp.wait_for(4, WAIT);
    let subjects: Vec<String> = got
        .iter()
        .map(|r| parse(&r.data).subject().unwrap_or_default().to_string())
        .collect();
    for subject in [
        "redis absent",
        "first over redis",
        "redis stopped",
        "after the restart",
    ] {
        assert!(subjects.iter().any(|s| s == subject), "{subjects:?}");
    }
}

/// Composes `app` with the mailer as Spin 3.x (wac-graph 0.8.1) or
/// Spin 4.0 (wac-graph 0.10.0) do, and validates the result.
macro_rules! compose_and_validate {
    ($wac:ident, $app:expr) => {{
        use $wac::{plug, types::Package, CompositionGraph, EncodeOptions};
        let mut graph = CompositionGraph::new();
        let app = Package::from_bytes("app:app", None, $app.to_vec(), graph.types_mut())
            .expect("the app component");
        let app = graph.register_package(app).expect("registered");
        let mailer = Package::from_bytes(
            "smtp-mailer:mailer",
            None,
            smtp_mailer_host::COMPONENT.to_vec(),
            graph.types_mut(),
        )
        .expect("the mailer component");
        let mailer = graph.register_package(mailer).expect("registered");
        plug(&mut graph, vec![mailer], app).expect("the mailer plugs into the app");
        let composed = graph
            .encode(EncodeOptions {
                validate: false,
                ..EncodeOptions::default()
            })
            .expect("the composition encodes");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&composed)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }};
}

#[test]
fn the_app_composes_validly_for_the_composers_of_spin_3_and_4() {
    let apps = [
        ("send-http", smtp_mailer_serve::HTTP_COMPONENT),
        ("send-redis", smtp_mailer_serve::REDIS_COMPONENT),
    ];
    for (name, app) in apps {
        let spin_3 = compose_and_validate!(wac_graph_0_8, app);
        assert_eq!(spin_3, Ok(()), "{name} with wac-graph 0.8.1 (Spin 3.x)");
        let spin_4 = compose_and_validate!(wac_graph_0_10, app);
        assert_eq!(spin_4, Ok(()), "{name} with wac-graph 0.10.0 (Spin 4.0)");
    }
}
