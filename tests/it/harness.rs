//! The harness of the one integration-test binary (`libtest-mimic`): each test registers itself
//! beside its function with [`test!`], naming what it needs of the machine. A test whose need is
//! absent is listed as ignored, with the need as its kind (`[needs PostGIS] stores::…`), so the
//! summary a newcomer reads says what did not run — unless CI demands it (`SAFEGRID_REQUIRE_*`,
//! `CI` for the shared data), when it runs and fails on the missing need. Registration is by
//! `linkme`: a test cannot be written and forgotten from a list.

use std::future::Future;
use std::pin::Pin;

/// Something of the machine's a test cannot run without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A PostGIS server at `SAFEGRID_TEST_DATABASE_URL` (`SAFEGRID_REQUIRE_POSTGIS=1` in CI).
    PostGis,
    /// Debian's Chromium and chromedriver (`SAFEGRID_REQUIRE_BROWSER=1` in CI).
    Browser,
    /// An MQTT broker on 127.0.0.1:1883 (`SAFEGRID_REQUIRE_MQTT=1` in CI).
    Mqtt,
    /// `../shared/data` beside the repository (always there in CI).
    SharedData,
}

impl Need {
    /// What the summary says.
    fn label(self) -> &'static str {
        match self {
            Self::PostGis => "needs PostGIS: SAFEGRID_TEST_DATABASE_URL",
            Self::Browser => "needs Chromium",
            Self::Mqtt => "needs MQTT on :1883",
            Self::SharedData => "needs ../shared/data",
        }
    }

    /// Whether CI demands it, so that its absence fails instead of skipping.
    fn required(self) -> bool {
        let on = |k: &str| std::env::var(k).as_deref() == Ok("1");
        match self {
            Self::PostGis => on("SAFEGRID_REQUIRE_POSTGIS"),
            Self::Browser => on("SAFEGRID_REQUIRE_BROWSER"),
            Self::Mqtt => on("SAFEGRID_REQUIRE_MQTT"),
            Self::SharedData => std::env::var_os("CI").is_some(),
        }
    }

    /// Whether this machine has it.
    fn present(self) -> bool {
        match self {
            Self::PostGis => std::env::var("SAFEGRID_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
            Self::Browser => {
                std::path::Path::new("/usr/bin/chromium").exists()
                    && std::path::Path::new("/usr/bin/chromedriver").exists()
            }
            Self::Mqtt => std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], 1883)),
                std::time::Duration::from_millis(300),
            )
            .is_ok(),
            Self::SharedData => crate::support::shared_root().exists(),
        }
    }
}

/// A test's body.
pub enum Body {
    /// A plain function.
    Sync(fn()),
    /// An async function, on a current-thread runtime (as `#[tokio::test]`).
    Async(fn() -> Pin<Box<dyn Future<Output = ()>>>),
    /// An async function on a two-worker multi-thread runtime.
    MultiThread(fn() -> Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// One registered test.
pub struct Test {
    /// `module_path!()` of the test (`it::api::…`).
    pub module: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// What it needs of the machine.
    pub needs: &'static [Need],
    /// What runs.
    pub body: Body,
}

/// Every test, gathered at link time.
#[allow(unsafe_code, reason = "linkme's link section; see test!")]
#[linkme::distributed_slice]
pub static TESTS: [Test];

/// Registers the function `$name` of this module as a test: `test!(name)` for a plain function,
/// `test!(async name)`, `test!(multi_thread name)`; needs follow, `test!(async name, PostGis)`.
#[macro_export]
macro_rules! test {
    (@reg $name:ident, $body:expr, [$($need:ident),*]) => {
        // linkme places the entry in a link section, which the workspace's `unsafe_code` lint
        // counts as unsafe; nothing else here is.
        #[allow(unsafe_code)]
        const _: () = {
            #[linkme::distributed_slice($crate::harness::TESTS)]
            static TEST: $crate::harness::Test = $crate::harness::Test {
                module: module_path!(),
                name: stringify!($name),
                needs: &[$($crate::harness::Need::$need),*],
                body: $body,
            };
        };
    };
    (async $name:ident $(, $need:ident)*) => {
        $crate::test!(@reg $name, $crate::harness::Body::Async(|| {
            let f: ::std::pin::Pin<::std::boxed::Box<dyn ::std::future::Future<Output = ()>>> = ::std::boxed::Box::pin($name());
            f
        }), [$($need),*]);
    };
    (multi_thread $name:ident $(, $need:ident)*) => {
        $crate::test!(@reg $name, $crate::harness::Body::MultiThread(|| {
            let f: ::std::pin::Pin<::std::boxed::Box<dyn ::std::future::Future<Output = ()> + Send>> = ::std::boxed::Box::pin($name());
            f
        }), [$($need),*]);
    };
    ($name:ident $(, $need:ident)*) => {
        $crate::test!(@reg $name, $crate::harness::Body::Sync($name), [$($need),*]);
    };
}

/// The trials, named `area::test` (the module path below the binary), sorted by name.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    let mut tests: Vec<&'static Test> = TESTS.iter().collect();
    tests.sort_by_key(|t| (t.module, t.name));
    tests
        .into_iter()
        .map(|t| {
            let area = t.module.split_once("::").map_or("", |(_, rest)| rest);
            let name = if area.is_empty() { t.name.to_owned() } else { format!("{area}::{}", t.name) };
            let missing = t.needs.iter().copied().find(|n| !n.present());
            let trial = libtest_mimic::Trial::test(name, move || {
                run(&t.body);
                Ok(())
            });
            match missing {
                // Run anyway: the test's own check fails on the missing need, saying which.
                Some(n) if n.required() => trial.with_kind(n.label()),
                Some(n) => trial.with_kind(n.label()).with_ignored_flag(true),
                None => trial,
            }
        })
        .collect()
}

fn run(body: &Body) {
    match body {
        Body::Sync(f) => f(),
        Body::Async(f) => {
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime").block_on(f());
        }
        Body::MultiThread(f) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a test runtime")
            .block_on(f()),
    }
}
