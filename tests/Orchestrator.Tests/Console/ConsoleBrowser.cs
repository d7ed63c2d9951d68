using Microsoft.Playwright;

namespace Orchestrator.Tests.Console;

/// <summary>
/// Chromium driven by Playwright, started once for the browser tests: the system's browser (Debian package
/// <c>chromium</c>, or <c>ORCHESTRATOR_TEST_CHROMIUM</c>), never a downloaded one. Without it the browser tests are
/// skipped on a developer's machine and fail under CI (<c>CI=true</c>), where <c>.ci/run</c> installs it.
/// </summary>
public sealed class ConsoleBrowser : IAsyncDisposable
{
    public const string Variable = "ORCHESTRATOR_TEST_CHROMIUM";

    IPlaywright? _playwright;
    IBrowser? _browser;
    readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Where screenshots of every page are kept: <c>TestResults/console-screenshots</c> in the test output folder.</summary>
    public static string Screenshots { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "console-screenshots");

    public static string? ExecutablePath()
    {
        var configured = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(configured))
            return File.Exists(configured) ? configured : null;
        return new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
    }

    public async Task<IBrowser> RequireAsync()
    {
        var path = ExecutablePath();
        if (path is null)
        {
            if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException(
                    $"Chromium is not installed (looked at {Environment.GetEnvironmentVariable(Variable) ?? "/usr/bin/chromium"}); CI needs it for the console's browser tests (.ci/run installs the chromium package).");
            Skip.If(true, $"Chromium is not installed (apt-get install chromium, or set {Variable}); the console's browser tests need it (they fail instead under CI=true).");
        }
        await _gate.WaitAsync();
        try
        {
            _playwright ??= await Playwright.CreateAsync();
            _browser ??= await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = path,
                Headless = true,
                Args = ["--disable-gpu", "--disable-dev-shm-usage"],
            });
            return _browser;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A fresh context (its own cookies) at 1280 px, or a phone's width.</summary>
    public async Task<IPage> NewPageAsync(Uri baseAddress, bool phone = false)
    {
        var browser = await RequireAsync();
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseAddress.ToString().TrimEnd('/'),
            ViewportSize = phone ? new ViewportSize { Width = 390, Height = 844 } : new ViewportSize { Width = 1280, Height = 900 },
            JavaScriptEnabled = true,
        });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    public static async Task ShotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(Screenshots);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name + ".png"), FullPage = true });
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
            await _browser.DisposeAsync();
        _playwright?.Dispose();
        _gate.Dispose();
    }
}
