//! `greenroom-upstreams [ADDR]`: serves the GitHub and Sentry stand-ins on
//! ADDR (default 127.0.0.1:7008) until stopped; `cargo xtask demo` runs it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7008".into())
        .parse()?;
    let upstreams = greenroom_upstreams::Upstreams::start(addr).await?;
    println!(
        "GitHub at {} and Sentry at {}",
        upstreams.github_url(),
        upstreams.sentry_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
