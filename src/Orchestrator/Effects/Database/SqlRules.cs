using Orchestrator.Hosting;

namespace Orchestrator.Effects.Database;

/// <summary>What a statement does, as far as the capabilities care: reads, writes rows, or changes the schema.</summary>
internal enum SqlKind { Read, Write, Ddl }

/// <summary>A word of a statement: a keyword or name (<see cref="Quoted"/> when it was a quoted identifier), or punctuation.</summary>
internal readonly record struct SqlToken(string Text, bool Quoted, bool Word);

/// <summary>
/// The first, readable check of a statement's text: it names the rule a statement breaks before the engine sees it.
/// It is not the confinement (the engine is: see <see cref="SqliteTenantDatabase"/> and <see cref="PostgresTenantDatabase"/>):
/// a statement this lets through still reaches only the tenant's own database. The lexer knows strings, quoted
/// identifiers, comments and PostgreSQL dollar quotes, so a keyword inside a string literal is not mistaken for one.
/// </summary>
internal static class SqlRules
{
    /// <summary>Every object Orchestrator keeps in a tenant's database (journal, schemas, roles) starts with this.</summary>
    public const string ReservedPrefix = "orchestrator_";

    static readonly HashSet<string> Catalogs = new(StringComparer.OrdinalIgnoreCase)
    {
        "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "sqlite_sequence", "sqlite_stat1", "sqlite_dbpage", "sqlite_dbstat",
        "information_schema", "pg_catalog", "pg_toast",
    };

    /// <summary>
    /// PostgreSQL functions that run SQL given as text (the XML export family, full-text search's query arguments) or
    /// change the session. Rows they reach are still confined by the tenant role's privileges; what the engine cannot
    /// refuse without a superuser is its system catalogs, readable by every role, so SQL hidden in a string would read
    /// object names across the database. They are refused by name, like the catalogs.
    /// </summary>
    static readonly HashSet<string> SqlTextFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
        "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema",
        "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
        "ts_stat", "ts_rewrite", "dblink", "dblink_exec", "dblink_open", "dblink_send_query",
    };

    /// <summary>What the lexer yields for PostgreSQL's <c>U&amp;"..."</c> / <c>U&amp;'...'</c>: escapes that would spell any name past the checks.</summary>
    const string UnicodeEscape = "U&";

    static readonly HashSet<string> DdlObjects = new(StringComparer.OrdinalIgnoreCase) { "TABLE", "INDEX", "VIEW", "TRIGGER", "SEQUENCE" };

    /// <summary>Checks one call's statement; returns its kind or throws <see cref="EffectRefusedException"/> naming the rule.</summary>
    public static SqlKind Check(string sql, bool postgres, IReadOnlySet<string> storeTables, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(sql))
            throw new EffectRefusedException(Problems.EffectFailed, "'sql' must be a statement.");
        if (sql.Length > maxLength)
            throw new EffectRefusedException(Problems.EffectFailed, $"'sql' is longer than {maxLength} characters (Orchestrator:Effects:Database:MaxSqlLength).");
        var statements = Split(Tokens(sql, postgres));
        if (statements.Count == 0)
            throw new EffectRefusedException(Problems.EffectFailed, "'sql' holds no statement, only comments.");
        if (statements.Count > 1)
            throw Denied("one call runs exactly one statement; this text holds several", "db.multiple-statements");
        var tokens = statements[0];

        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (!token.Word)
                continue;
            if (postgres && !token.Quoted && token.Text == UnicodeEscape)
                throw Denied("Unicode escapes (U&\"...\", U&'...') are not accepted: write names and strings plainly, data as parameters", "db.escape");
            if (postgres && SqlTextFunctions.Contains(token.Text) && !(i > 0 && tokens[i - 1].Text.Equals("EXTENSION", StringComparison.OrdinalIgnoreCase)))
                throw Denied($"'{token.Text}' runs SQL given as text, which would reach past the tenant's tables", "db.dynamic-sql");
            if (postgres && token.Text.Equals("set_config", StringComparison.OrdinalIgnoreCase))
                throw Denied("set_config changes the session, which is Orchestrator's", "db.session");
            if (token.Text.StartsWith(ReservedPrefix, StringComparison.OrdinalIgnoreCase))
                throw Denied($"'{token.Text}' is Orchestrator's own (every name starting with {ReservedPrefix} is)", "db.reserved");
            if (Catalogs.Contains(token.Text) || (postgres && token.Text.StartsWith("pg_", StringComparison.OrdinalIgnoreCase)))
                throw Denied($"'{token.Text}' is the engine's catalog; a statement reads and writes the tenant's own tables only", "db.catalog");
            // Orchestrator's tables are spelled as the store spells them (Jobs, AuditEntries): a tenant's own 'jobs' table is fine.
            if (storeTables.Contains(token.Text))
                throw Denied($"'{token.Text}' names one of Orchestrator's own tables", "db.store-table");
            if (!token.Quoted && token.Text.Equals("load_extension", StringComparison.OrdinalIgnoreCase))
                throw Denied("loading extensions is not allowed", "db.extension");
            if (postgres && !token.Quoted && token.Text.Equals("public", StringComparison.OrdinalIgnoreCase) && i + 1 < tokens.Count && tokens[i + 1].Text == ".")
                throw Denied("the public schema is Orchestrator's; a statement reaches the tenant's own schema only", "db.store-table");
        }

        var first = tokens[0].Word && !tokens[0].Quoted ? tokens[0].Text.ToUpperInvariant() : "";
        var second = tokens.Count > 1 ? tokens[1].Text.ToUpperInvariant() : "";
        switch (first)
        {
            case "SELECT" or "VALUES":
                return SqlKind.Read;
            case "TABLE" when postgres:
                return SqlKind.Read;
            case "WITH":
                return tokens.Any(t => t.Word && !t.Quoted && t.Text.ToUpperInvariant() is "INSERT" or "UPDATE" or "DELETE" or "MERGE") ? SqlKind.Write : SqlKind.Read;
            case "INSERT" or "UPDATE" or "DELETE" or "REPLACE":
                return SqlKind.Write;
            case "MERGE" or "TRUNCATE" when postgres:
                return SqlKind.Write;
            case "CREATE" or "DROP" or "ALTER":
                var what = tokens.Skip(1).Where(t => t.Word).Select(t => t.Text.ToUpperInvariant())
                    .SkipWhile(w => w is "UNIQUE" or "TEMP" or "TEMPORARY" or "OR" or "REPLACE" or "UNLOGGED").FirstOrDefault() ?? "";
                if (what is "EXTENSION" or "VIRTUAL")
                    throw Denied($"{first} {what} loads code into the engine", "db.extension");
                if (!DdlObjects.Contains(what) || (postgres && what == "TRIGGER"))
                    throw Denied($"{first} {what} is not a statement db/* runs (tables, indexes, views{(postgres ? ", sequences" : ", triggers")} only)", "db.statement");
                return SqlKind.Ddl;
            case "ATTACH" or "DETACH":
                throw Denied($"{first} would reach another database file", "db.attach");
            case "PRAGMA":
                throw Denied("PRAGMA changes the engine's settings", "db.pragma");
            case "COPY":
                throw Denied("COPY reads or writes files and streams outside the database", "db.copy");
            case "VACUUM" or "ANALYZE" or "REINDEX" or "CLUSTER":
                throw Denied($"{first} is maintenance{(second == "INTO" ? " and VACUUM INTO writes another file" : "")}", "db.vacuum");
            case "LOAD":
                throw Denied("LOAD loads code into the engine", "db.extension");
            case "BEGIN" or "COMMIT" or "END" or "ROLLBACK" or "SAVEPOINT" or "RELEASE" or "START" or "ABORT" or "PREPARE":
                throw Denied("each call runs in a transaction of its own; statements cannot open, end or split it", "db.transaction");
            case "SET" or "RESET" or "DISCARD" or "SHOW" or "LISTEN" or "UNLISTEN" or "NOTIFY":
                throw Denied($"{first} changes or reads the session, which is Orchestrator's", "db.session");
            case "GRANT" or "REVOKE":
                throw Denied("privileges are Orchestrator's to give", "db.privileges");
            default:
                throw Denied($"'{(first.Length > 0 ? first : tokens[0].Text)}' is not a statement db/* runs (SELECT, INSERT, UPDATE, DELETE, and DDL where allowed)", "db.statement");
        }
    }

    static EffectRefusedException Denied(string why, string rule) => new(Problems.CapabilityDenied, $"The statement is not allowed: {why}.", rule);

    static List<List<SqlToken>> Split(IEnumerable<SqlToken> tokens)
    {
        var statements = new List<List<SqlToken>>();
        var current = new List<SqlToken>();
        foreach (var token in tokens)
        {
            if (!token.Word && token.Text == ";")
            {
                if (current.Count > 0)
                    statements.Add(current);
                current = [];
            }
            else
                current.Add(token);
        }
        if (current.Count > 0)
            statements.Add(current);
        return statements;
    }

    /// <summary>The statement's words and punctuation; string literals and comments are skipped, quoted identifiers kept as words.</summary>
    public static IEnumerable<SqlToken> Tokens(string sql, bool postgres)
    {
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && At(sql, i + 1, '-'))
            {
                while (i < sql.Length && sql[i] != '\n')
                    i++;
            }
            else if (c == '/' && At(sql, i + 1, '*'))
            {
                // PostgreSQL nests block comments; SQLite does not.
                var depth = 0;
                do
                {
                    if (sql[i] == '/' && At(sql, i + 1, '*')) { depth++; i += 2; }
                    else if (sql[i] == '*' && At(sql, i + 1, '/')) { depth--; i += 2; if (!postgres) depth = 0; }
                    else i++;
                } while (i < sql.Length && depth > 0);
            }
            else if (c == '\'' || (c is 'E' or 'e' && postgres && At(sql, i + 1, '\'')))
            {
                var escapes = c != '\'';
                i += escapes ? 2 : 1;
                while (i < sql.Length)
                {
                    if (escapes && sql[i] == '\\') { i += 2; continue; }
                    if (sql[i] == '\'' && At(sql, i + 1, '\'')) { i += 2; continue; }
                    if (sql[i] == '\'') { i++; break; }
                    i++;
                }
            }
            else if (c is '"' or '`' || (c == '[' && !postgres))
            {
                var close = c == '[' ? ']' : c;
                var start = ++i;
                var text = new System.Text.StringBuilder();
                while (i < sql.Length)
                {
                    if (sql[i] == close && close != ']' && At(sql, i + 1, close)) { text.Append(close); i += 2; continue; }
                    if (sql[i] == close) { i++; break; }
                    text.Append(sql[i++]);
                }
                _ = start;
                yield return new SqlToken(text.ToString(), Quoted: true, Word: true);
            }
            else if (c == '$' && postgres && DollarTag(sql, i) is { } tag)
            {
                var end = sql.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                i = end < 0 ? sql.Length : end + tag.Length;
            }
            else if (postgres && c is 'U' or 'u' && At(sql, i + 1, '&') && (At(sql, i + 2, '"') || At(sql, i + 2, '\'')))
            {
                yield return new SqlToken(UnicodeEscape, Quoted: false, Word: true);
                i += 2;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] is '_' or '$'))
                    i++;
                yield return new SqlToken(sql[start..i], Quoted: false, Word: true);
            }
            else
            {
                yield return new SqlToken(c.ToString(), Quoted: false, Word: false);
                i++;
            }
        }
    }

    static bool At(string text, int index, char c) => index < text.Length && text[index] == c;

    /// <summary>A PostgreSQL dollar-quote opening at <paramref name="i"/> (<c>$$</c> or <c>$tag$</c>), or null for a parameter such as <c>$1</c>.</summary>
    static string? DollarTag(string sql, int i)
    {
        var j = i + 1;
        while (j < sql.Length && (char.IsLetterOrDigit(sql[j]) || sql[j] == '_'))
        {
            if (j == i + 1 && char.IsDigit(sql[j]))
                return null;
            j++;
        }
        return j < sql.Length && sql[j] == '$' ? sql[i..(j + 1)] : null;
    }
}
