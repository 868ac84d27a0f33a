//! `nas-host plugins list` and `nas-host plugins inspect`.

use nas_plugin_runtime::{self as plugin, Runtime};

pub(super) fn plugins_list() -> anyhow::Result<()> {
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let files = plugin::discover();
    if files.is_empty() {
        println!("no plugins found on the plugin path; build the bundled ones with `make build`");
        return Ok(());
    }
    println!(
        "{:<8}  {:<13}  {:<8}  {:<8}  path",
        "kind", "name", "version", "contract"
    );
    for file in files {
        match describe(&runtime, &file) {
            Ok((kind, info, loaded)) => println!(
                "{:<8}  {:<13}  {:<8}  {:<8}  {}",
                kind.as_str(),
                info.name,
                info.version,
                loaded.contract_version,
                file.display()
            ),
            Err(e) => println!(
                "{:<8}  {:<13}  {:<8}  {:<8}  {} ({e:#})",
                "invalid",
                "-",
                "-",
                "-",
                file.display()
            ),
        }
    }
    Ok(())
}

pub(super) fn describe(
    runtime: &Runtime,
    file: &std::path::Path,
) -> anyhow::Result<(plugin::PluginKind, plugin::PluginInfo, plugin::LoadedPlugin)> {
    let loaded = runtime.load(file)?;
    let limits = nas_config::SandboxLimits::default();
    let info = match loaded.kind {
        plugin::PluginKind::Agent => plugin::AgentPlugin::instantiate(runtime, &loaded, limits, 0)?
            .info()
            .clone(),
        plugin::PluginKind::Reward => plugin::RewardPlugin::instantiate(runtime, &loaded, limits, 0)?
            .info()
            .clone(),
        plugin::PluginKind::Assessor => plugin::AssessorPlugin::instantiate(runtime, &loaded, limits, 0)?
            .info()
            .clone(),
    };
    Ok((loaded.kind, info, loaded))
}

pub(super) fn plugins_inspect(spec: &str) -> anyhow::Result<()> {
    let path = plugin::resolve(spec)?;
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let (kind, info, loaded) = describe(&runtime, &path)?;
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    println!("kind:        {}", kind.as_str());
    println!("description: {}", info.description);
    println!(
        "contract:    nas:plugin@{} (host speaks {})",
        loaded.contract_version,
        plugin::CONTRACT_VERSION
    );
    println!("path:        {}", path.display());
    println!("sha256:      {}", loaded.sha256);
    Ok(())
}
