using System.Net;
using System.Net.Sockets;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// A host <c>http/fetch</c> may reach (<c>Orchestrator:Effects:HttpRules:N</c>): a name (or <c>*.example.com</c>),
/// optionally only some methods and tenants, and the non-public addresses it may resolve to (CIDRs such as
/// <c>10.1.2.0/24</c>; by default none: loopback, private, link-local and metadata addresses are refused).
/// </summary>
public sealed class HttpRule
{
    public string Host { get; set; } = "";

    /// <summary>Ports allowed; empty for any.</summary>
    public List<int> Ports { get; set; } = [];

    /// <summary>Methods allowed (e.g. GET); empty for any.</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>Tenants the rule is for; empty for all.</summary>
    public List<string> Tenants { get; set; } = [];

    /// <summary>Non-public address ranges this host may resolve to, as CIDRs.</summary>
    public List<string> AllowAddresses { get; set; } = [];
}

/// <summary>Which hosts and addresses <c>http/fetch</c> may reach; every block names its rule (<c>http.host</c>, <c>http.address.loopback</c> ...).</summary>
internal sealed class HostRules(EffectsOptions options)
{
    /// <summary>Cloud metadata services: credentials live there, so they are named apart from their ranges.</summary>
    static readonly IPAddress[] Metadata =
    [
        IPAddress.Parse("169.254.169.254"), IPAddress.Parse("169.254.170.2"), IPAddress.Parse("100.100.100.200"),
        IPAddress.Parse("fd00:ec2::254"),
    ];

    static readonly (IPNetwork Network, string Kind)[] NonPublic =
    [
        (IPNetwork.Parse("0.0.0.0/8"), "reserved"),
        (IPNetwork.Parse("127.0.0.0/8"), "loopback"),
        (IPNetwork.Parse("10.0.0.0/8"), "private"),
        (IPNetwork.Parse("172.16.0.0/12"), "private"),
        (IPNetwork.Parse("192.168.0.0/16"), "private"),
        (IPNetwork.Parse("100.64.0.0/10"), "private"), // carrier-grade NAT
        (IPNetwork.Parse("169.254.0.0/16"), "link-local"),
        (IPNetwork.Parse("192.0.0.0/24"), "reserved"),
        (IPNetwork.Parse("192.0.2.0/24"), "reserved"),
        (IPNetwork.Parse("198.18.0.0/15"), "reserved"),
        (IPNetwork.Parse("198.51.100.0/24"), "reserved"),
        (IPNetwork.Parse("203.0.113.0/24"), "reserved"),
        (IPNetwork.Parse("224.0.0.0/4"), "reserved"), // multicast
        (IPNetwork.Parse("240.0.0.0/4"), "reserved"), // and broadcast
        (IPNetwork.Parse("::/128"), "reserved"),
        (IPNetwork.Parse("::1/128"), "loopback"),
        (IPNetwork.Parse("fc00::/7"), "private"), // unique local
        (IPNetwork.Parse("fe80::/10"), "link-local"),
        (IPNetwork.Parse("ff00::/8"), "reserved"),
        (IPNetwork.Parse("2001:db8::/32"), "reserved"),
        (IPNetwork.Parse("100::/64"), "reserved"),
    ];

    IEnumerable<HttpRule> Rules => options.HttpAllowList.Select(h => new HttpRule { Host = h }).Concat(options.HttpRules);

    /// <summary>The rule that lets this tenant call this method on this URL's host, or <c>capability_denied</c> (rule <c>http.host</c>).</summary>
    public HttpRule Allow(Uri uri, string method, string tenant)
    {
        var host = uri.IdnHost.Trim('[', ']');
        foreach (var rule in Rules)
        {
            var (name, port) = SplitPort(rule.Host);
            if (!Matches(name, host) || (port is { } p && p != uri.Port) || (rule.Ports.Count > 0 && !rule.Ports.Contains(uri.Port)))
                continue;
            if ((rule.Methods.Count == 0 || rule.Methods.Contains(method, StringComparer.OrdinalIgnoreCase)) &&
                (rule.Tenants.Count == 0 || rule.Tenants.Contains(tenant, StringComparer.Ordinal)))
                return rule;
        }
        throw new EffectRefusedException(Problems.CapabilityDenied,
            $"Host '{uri.Authority}' is not allowed for {method} (Orchestrator:Effects:HttpAllowList / HttpRules).", "http.host");
    }

    /// <summary>The address to connect to: the first the rule allows, or <c>capability_denied</c> naming why the first was refused.</summary>
    public static IPAddress Pick(HttpRule rule, string host, IReadOnlyList<IPAddress> addresses)
    {
        if (addresses.Count == 0)
            throw new EffectRefusedException(Problems.EffectFailed, $"The host '{host}' has no address.");
        string? refused = null;
        foreach (var address in addresses)
        {
            var plain = Plain(address);
            if (KindOf(plain) is not { } kind || rule.AllowAddresses.Any(cidr => IPNetwork.Parse(cidr).Contains(plain)))
                return plain;
            refused ??= kind;
        }
        throw new EffectRefusedException(Problems.CapabilityDenied,
            $"The host '{host}' resolves to a {refused} address ({string.Join(", ", addresses)}), which http/fetch does not reach unless a rule's AllowAddresses names it.",
            $"http.address.{refused}");
    }

    /// <summary>An IPv4 address carried in IPv6 (mapped, or NAT64) is judged as the IPv4 address it is.</summary>
    static IPAddress Plain(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            return address.MapToIPv4();
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && IPNetwork.Parse("64:ff9b::/96").Contains(address))
            return new IPAddress(address.GetAddressBytes()[12..]);
        return address;
    }

    /// <summary>Null for a public address; else <c>metadata</c>, <c>loopback</c>, <c>private</c>, <c>link-local</c> or <c>reserved</c>.</summary>
    internal static string? KindOf(IPAddress address)
    {
        address = Plain(address);
        if (Metadata.Contains(address))
            return "metadata";
        foreach (var (network, kind) in NonPublic)
            if (network.BaseAddress.AddressFamily == address.AddressFamily && network.Contains(address))
                return kind;
        return null;
    }

    static (string Host, int? Port) SplitPort(string entry)
    {
        var colon = entry.LastIndexOf(':');
        return colon > 0 && !entry.EndsWith(']') && entry.IndexOf(':') == colon && int.TryParse(entry[(colon + 1)..], out var port)
            ? (entry[..colon], port)
            : (entry.Trim('[', ']'), null);
    }

    /// <summary>An exact host name (any case), or <c>*.example.com</c> for its subdomains.</summary>
    public static bool Matches(string pattern, string host) =>
        pattern.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(pattern[1..], StringComparison.OrdinalIgnoreCase) && host.Length > pattern.Length - 1
            : string.Equals(pattern.Trim('[', ']'), host, StringComparison.OrdinalIgnoreCase);
}
