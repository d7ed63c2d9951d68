using System.Reflection;
using System.Reflection.Emit;

namespace Orchestrator.Tests.Architecture;

/// <summary>
/// Feature folders depend on each other in one direction only. Dependencies are read from the compiled service:
/// every type a type names in its signatures, fields, attributes and method bodies (IL), grouped by feature folder
/// (the namespace under <c>Orchestrator.</c>). A cycle between two folders fails the test, naming the types that close it.
/// </summary>
public sealed class FeatureDependencyTests
{
    static readonly Assembly Service = typeof(Orchestrator.Storage.OrchestratorDb).Assembly;

    [Fact]
    public void Feature_folders_form_no_cycle()
    {
        var edges = Edges();
        var cycles = new List<string>();
        foreach (var ((from, to), because) in edges.OrderBy(e => e.Key.From).ThenBy(e => e.Key.To))
            if (string.CompareOrdinal(from, to) < 0 && edges.TryGetValue((to, from), out var back))
                cycles.Add($"{from} <-> {to}: {because} / {back}");
        var path = LongerCycle(edges);
        cycles.Should().BeEmpty("feature folders must depend on each other one way only; two-way dependencies:\n" + string.Join("\n", cycles));
        path.Should().BeNull("feature folders must form no cycle; found " + path);
    }

    [Fact]
    public void The_reading_of_dependencies_sees_a_known_edge()
    {
        // Acting admits jobs: if this edge were not seen, the test above could pass by reading nothing.
        Edges().Keys.Should().Contain(("Acting", "Jobs"));
    }

    /// <summary>A cycle of three or more folders, as a path, or null.</summary>
    static string? LongerCycle(Dictionary<(string From, string To), string> edges)
    {
        var next = edges.Keys.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).ToList());
        var state = new Dictionary<string, int>();
        var stack = new List<string>();
        string? found = null;
        void Visit(string node)
        {
            if (found is not null)
                return;
            state[node] = 1;
            stack.Add(node);
            foreach (var to in next.GetValueOrDefault(node) ?? [])
            {
                if (state.GetValueOrDefault(to) == 1)
                    found = string.Join(" -> ", stack.SkipWhile(s => s != to).Append(to));
                else if (state.GetValueOrDefault(to) == 0)
                    Visit(to);
            }
            stack.RemoveAt(stack.Count - 1);
            state[node] = 2;
        }
        foreach (var node in next.Keys.Order())
            if (state.GetValueOrDefault(node) == 0)
                Visit(node);
        return found;
    }

    static Dictionary<(string From, string To), string> Edges()
    {
        var edges = new Dictionary<(string, string), string>();
        foreach (var type in Service.GetTypes())
        {
            if (FolderOf(type) is not { } from)
                continue;
            foreach (var used in Uses(type))
                if (FolderOf(used) is { } to && to != from)
                    edges.TryAdd((from, to), $"{Name(type)} uses {Name(used)}");
        }
        return edges;
    }

    static string Name(Type type) => type.FullName ?? type.Name;

    /// <summary>The feature folder of a service type (the namespace part after <c>Orchestrator.</c>); null for the root and for others' types.</summary>
    static string? FolderOf(Type type)
    {
        while (type.IsNested)
            type = type.DeclaringType!;
        if (type.Assembly != Service || type.Namespace is not { } ns || !ns.StartsWith("Orchestrator.", StringComparison.Ordinal))
            return null;
        var folder = ns["Orchestrator.".Length..];
        return folder.Split('.')[0];
    }

    const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    static IEnumerable<Type> Uses(Type type)
    {
        var found = new HashSet<Type>();
        void Add(Type? t)
        {
            if (t is null || !found.Add(t))
                return;
            if (t.HasElementType)
                Add(t.GetElementType());
            if (t.IsGenericType)
                foreach (var argument in t.GetGenericArguments())
                    Add(argument);
        }
        Add(type.BaseType);
        foreach (var i in type.GetInterfaces())
            Add(i);
        foreach (var a in type.GetCustomAttributesData())
        {
            Add(a.AttributeType);
            foreach (var argument in a.ConstructorArguments)
                if (argument.Value is Type t)
                    Add(t);
        }
        foreach (var field in type.GetFields(All))
            Add(field.FieldType);
        foreach (var property in type.GetProperties(All))
            Add(property.PropertyType);
        foreach (var method in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            if (method is MethodInfo info)
                Add(info.ReturnType);
            foreach (var parameter in method.GetParameters())
                Add(parameter.ParameterType);
            foreach (var used in BodyUses(method))
                Add(used);
        }
        return found;
    }

    static readonly OpCode[] OneByte = new OpCode[0x100];
    static readonly OpCode[] TwoByte = new OpCode[0x100];

    static FeatureDependencyTests()
    {
        foreach (var field in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var code = (OpCode)field.GetValue(null)!;
            var value = (ushort)code.Value;
            if (value < 0x100)
                OneByte[value] = code;
            else if ((value & 0xff00) == 0xfe00)
                TwoByte[value & 0xff] = code;
        }
    }

    /// <summary>The types a method body names: every type, field and method token in its IL.</summary>
    static IEnumerable<Type> BodyUses(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
            yield break;
        var module = method.Module;
        Type[]? typeArgs = method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var at = 0;
        while (at < il.Length)
        {
            var code = il[at] == 0xfe ? TwoByte[il[++at]] : OneByte[il[at]];
            at++;
            var size = code.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
                _ => 4,
            };
            if (code.OperandType is OperandType.InlineType or OperandType.InlineTok or OperandType.InlineField or OperandType.InlineMethod)
            {
                var token = BitConverter.ToInt32(il, at);
                Type? used = null;
                try
                {
                    used = module.ResolveMember(token, typeArgs, methodArgs) switch
                    {
                        Type t => t,
                        MemberInfo m => m.DeclaringType,
                        _ => null,
                    };
                }
                catch (ArgumentException)
                {
                }
                if (used is not null)
                    yield return used;
            }
            at += size;
        }
    }
}
