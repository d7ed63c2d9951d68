using System.Data;
using System.Data.Common;
using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Orchestrator.Storage;

/// <summary>
/// The writer's connection and its prepared statements. Statements are generated once per shape from the
/// EF model (table, columns, value converters and parameter types all come from it), so the model stays
/// the single source of truth while each write costs a bind and a step instead of an EF SaveChanges.
/// </summary>
/// <remarks>
/// Why not SaveChanges: profiled at 64 connections it cost ~35% of all CPU, serialized on the writer,
/// capping the whole node near 2k jobs/s. A guarded UPDATE here also reports a lost guard as 0 rows and a
/// unique key taken answers 0 rows (<c>ON CONFLICT DO NOTHING</c>), so one losing write never takes its batch down.
/// </remarks>
internal sealed class StoreSession : IAsyncDisposable
{
    readonly OrchestratorDb _db;
    readonly DbConnection _connection;
    readonly ISqlGenerationHelper _sql;
    DbTransaction? _transaction;

    StoreSession(OrchestratorDb db)
    {
        _db = db;
        _connection = db.Database.GetDbConnection();
        _sql = db.GetService<ISqlGenerationHelper>();
        IsSqlite = db.Database.IsSqlite();
    }

    public static async Task<StoreSession> OpenAsync(IDbContextFactory<OrchestratorDb> dbs)
    {
        var db = await dbs.CreateDbContextAsync();
        await db.Database.OpenConnectionAsync();
        return new StoreSession(db);
    }

    public async Task BeginAsync() => _transaction = await _connection.BeginTransactionAsync();

    public async Task CommitAsync()
    {
        await _transaction!.CommitAsync();
        await _transaction.DisposeAsync();
        _transaction = null;
    }

    public async Task RollbackAsync()
    {
        if (_transaction is null)
            return;
        try
        {
            await _transaction.RollbackAsync();
        }
        finally
        {
            await _transaction.DisposeAsync();
            _transaction = null;
        }
    }

    /// <summary>
    /// Inserts the entity (every mapped column). Returns 1, or 0 when a unique key was already taken or the
    /// fence no longer holds. <c>ON CONFLICT DO NOTHING</c> rather than a caught error: on PostgreSQL a failed
    /// statement aborts the whole transaction, and with it every other write of the batch.
    /// </summary>
    public int Insert<T>(T entity, Fence? fence) where T : class
    {
        var shape = ShapeOf(typeof(T));
        var statement = StatementFor($"insert:{typeof(T).Name}:{fence?.Leased.Name}", () =>
        {
            var columns = string.Join(", ", shape.Columns.Select(c => _sql.DelimitIdentifier(c.Column)));
            var values = string.Join(", ", shape.Columns.Select((_, i) => _sql.GenerateParameterNamePlaceholder("p" + i)));
            var parameters = shape.Columns.Select((c, i) => (c, _sql.GenerateParameterName("p" + i))).ToList();
            // INSERT ... SELECT ... WHERE: SQLite needs the WHERE to read ON CONFLICT as the upsert clause.
            var sql = fence is null
                ? $"INSERT INTO {Table(shape)} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING"
                : $"INSERT INTO {Table(shape)} ({columns}) SELECT {values} WHERE {FenceSql(fence, parameters)} ON CONFLICT DO NOTHING";
            return (sql, parameters);
        });
        var index = 0;
        foreach (var column in shape.Columns)
            statement.Bind(index++, column.Get(entity));
        BindFence(statement, index, fence);
        try
        {
            return statement.Command.ExecuteNonQuery();
        }
        catch (DbException error) when (IsSqlite && StoreErrors.IsKeyConflict(error))
        {
            // SQLite aborts only the failing statement (a missing parent row), never the transaction.
            return 0;
        }
    }

    /// <summary>
    /// Writes the named properties where the key matches, every guard still holds its expected value and the
    /// fence holds. Returns the rows changed: 0 means the row was not in the expected state.
    /// </summary>
    public int Update<T>(T entity, IReadOnlyList<Guard> guards, IReadOnlyList<string> properties, Fence? fence) where T : class
    {
        var shape = ShapeOf(typeof(T));
        var statement = StatementFor($"update:{typeof(T).Name}:{string.Join(",", guards.Select(g => g.Property))}:{string.Join(",", properties)}:{fence?.Leased.Name}", () =>
        {
            var set = properties.Select(shape.Find).ToList();
            var guarded = guards.Select(g => shape.Find(g.Property)).ToList();
            var parameters = set.Select((c, i) => (c, _sql.GenerateParameterName("s" + i)))
                .Concat(shape.Key.Select((c, i) => (c, _sql.GenerateParameterName("k" + i))))
                .Concat(guarded.Select((c, i) => (c, _sql.GenerateParameterName("g" + i))))
                .ToList();
            var sql = $"UPDATE {Table(shape)} SET " +
                string.Join(", ", set.Select((c, i) => $"{_sql.DelimitIdentifier(c.Column)} = {_sql.GenerateParameterNamePlaceholder("s" + i)}")) +
                " WHERE " + string.Join(" AND ", shape.Key.Select((c, i) => $"{_sql.DelimitIdentifier(c.Column)} = {_sql.GenerateParameterNamePlaceholder("k" + i)}")
                    .Concat(guarded.Select((c, i) => $"{_sql.DelimitIdentifier(c.Column)} = {_sql.GenerateParameterNamePlaceholder("g" + i)}")));
            if (fence is not null)
                sql += " AND " + FenceSql(fence, parameters);
            return (sql, parameters);
        });
        var index = 0;
        foreach (var property in properties)
            statement.Bind(index++, shape.Find(property).Get(entity));
        foreach (var key in shape.Key)
            statement.Bind(index++, key.Get(entity));
        foreach (var guard in guards)
            statement.Bind(index++, guard.Expected);
        BindFence(statement, index, fence);
        return statement.Command.ExecuteNonQuery();
    }

    /// <summary>
    /// <c>EXISTS (the owner row still carries the fenced epoch)</c>. On PostgreSQL the row is share-locked until the
    /// batch commits, so a claim by another node (which raises the epoch) waits for this write instead of slipping
    /// in between the check and the commit: every fenced write lands wholly before a new claim, or not at all.
    /// </summary>
    string FenceSql(Fence fence, List<(ColumnShape Column, string Name)> parameters)
    {
        var leased = ShapeOf(fence.Leased);
        var key = leased.Key.Single();
        var epoch = leased.Find(nameof(ILeased.Epoch));
        var owner = leased.Find(nameof(ILeased.Owner));
        parameters.Add((key, _sql.GenerateParameterName("fk")));
        parameters.Add((epoch, _sql.GenerateParameterName("fe")));
        parameters.Add((owner, _sql.GenerateParameterName("fo")));
        return $"EXISTS (SELECT 1 FROM {Table(leased)} WHERE {_sql.DelimitIdentifier(key.Column)} = {_sql.GenerateParameterNamePlaceholder("fk")} " +
               $"AND {_sql.DelimitIdentifier(epoch.Column)} = {_sql.GenerateParameterNamePlaceholder("fe")} " +
               $"AND {_sql.DelimitIdentifier(owner.Column)} = {_sql.GenerateParameterNamePlaceholder("fo")}{(IsSqlite ? "" : " FOR SHARE")})";
    }

    static void BindFence(Statement statement, int index, Fence? fence)
    {
        if (fence is null)
            return;
        statement.Bind(index, fence.Key);
        statement.Bind(index + 1, fence.Epoch);
        statement.Bind(index + 2, fence.Node);
    }

    /// <summary>True on the embedded SQLite store (one node, one writer); false on PostgreSQL.</summary>
    public bool IsSqlite { get; }

    /// <summary>A statement of the caller's own (a claim, a renewal), prepared once per connection and run in the batch's transaction.
    /// Each parameter takes the type mapping of the column it is compared with, so values are converted as the column stores them.</summary>
    public Statement Command(string key, Func<StoreSql, string> build, params (Type Entity, string Property, string Name)[] parameters) =>
        StatementFor("sql:" + key, () =>
        {
            var sql = build(new StoreSql(this));
            return (sql, parameters.Select(p => (ShapeOf(p.Entity).Find(p.Property), _sql.GenerateParameterName(p.Name))).ToList());
        });

    /// <summary>Names in a statement written for this store: tables, columns and parameter placeholders.</summary>
    public sealed class StoreSql(StoreSession session)
    {
        public string Table<T>() => session.Table(session.ShapeOf(typeof(T)));

        public string Column<T>(string property) => session._sql.DelimitIdentifier(session.ShapeOf(typeof(T)).Find(property).Column);

        public string Parameter(string name) => session._sql.GenerateParameterNamePlaceholder(name);

        public bool IsSqlite => session.IsSqlite;
    }

    /// <summary>The value a property has in an entity, as the model reads it.</summary>
    public object? ValueOf<T>(T entity, string property) where T : class => ShapeOf(typeof(T)).Find(property).Get(entity);

    /// <summary>The row an entity is (its type and key), to tell writes to the same row apart.</summary>
    public (Type, string)? RowOf(object? entity)
    {
        if (entity is null)
            return null;
        var shape = ShapeOf(entity.GetType());
        return (entity.GetType(), shape.Key.Count == 1
            ? Convert.ToString(shape.Key[0].Get(entity), System.Globalization.CultureInfo.InvariantCulture) ?? ""
            : string.Join("\u001f", shape.Key.Select(k => Convert.ToString(k.Get(entity), System.Globalization.CultureInfo.InvariantCulture))));
    }

    string Table(EntityShape shape) => _sql.DelimitIdentifier(shape.Table, shape.Schema);

    Statement StatementFor(string key, Func<(string Sql, List<(ColumnShape Column, string Name)> Parameters)> build)
    {
        if (!_statements.TryGetValue(key, out var statement))
        {
            var (sql, parameters) = build();
            var command = _connection.CreateCommand();
            command.CommandText = sql;
            var bound = parameters.Select(p =>
            {
                var parameter = p.Column.Mapping.CreateParameter(command, p.Name, null, p.Column.Nullable, ParameterDirection.Input);
                command.Parameters.Add(parameter);
                return (p.Column, parameter);
            }).ToArray();
            statement = _statements[key] = new Statement(command, bound);
        }
        statement.Command.Transaction = _transaction;
        if (!statement.Prepared)
        {
            // Prepared once per connection; every later execution only rebinds values.
            statement.Command.Prepare();
            statement.Prepared = true;
        }
        return statement;
    }

    readonly Dictionary<string, Statement> _statements = new(StringComparer.Ordinal);

    /// <summary>A prepared statement and its parameters, bound by position.</summary>
    public sealed class Statement(DbCommand command, (ColumnShape Column, DbParameter Parameter)[] parameters)
    {
        public DbCommand Command => command;

        public bool Prepared { get; set; }

        /// <summary>Sets a parameter to a model value, converted to what the store keeps (EF's value converter).</summary>
        public void Bind(int index, object? value)
        {
            var (column, parameter) = parameters[index];
            var stored = value is null ? null : column.Mapping.Converter is { } converter ? converter.ConvertToProvider(value) : value;
            parameter.Value = stored ?? DBNull.Value;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var statement in _statements.Values)
            await statement.Command.DisposeAsync();
        await RollbackAsync();
        await _db.Database.CloseConnectionAsync();
        await _db.DisposeAsync();
    }

    readonly Dictionary<Type, EntityShape> _shapes = [];

    /// <summary>An entity type's table, key and columns as the EF model maps them, built once per type.</summary>
    EntityShape ShapeOf(Type type)
    {
        if (!_shapes.TryGetValue(type, out var shape))
            _shapes[type] = shape = EntityShape.Build(_db.Model.FindEntityType(type)
                ?? throw new InvalidOperationException($"{type.Name} is not in the store's model."));
        return shape;
    }
}

internal sealed class EntityShape
{
    readonly Dictionary<string, ColumnShape> _byProperty;

    EntityShape(string table, string? schema, List<ColumnShape> columns, List<ColumnShape> key)
    {
        Table = table;
        Schema = schema;
        Columns = columns;
        Key = key;
        _byProperty = columns.ToDictionary(c => c.Property, StringComparer.Ordinal);
    }

    public string Table { get; }
    public string? Schema { get; }
    public IReadOnlyList<ColumnShape> Columns { get; }
    public IReadOnlyList<ColumnShape> Key { get; }

    public ColumnShape Find(string property) =>
        _byProperty.TryGetValue(property, out var column) ? column : throw new InvalidOperationException($"No mapped property {property} on {Table}.");

    public static EntityShape Build(IEntityType entity)
    {
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var columns = entity.GetProperties()
            .Select(p => new ColumnShape(p.Name, p.GetColumnName(table)!, (RelationalTypeMapping)p.GetTypeMapping(), p.IsNullable, Getter(p)))
            .ToList();
        var key = entity.FindPrimaryKey()!.Properties.Select(p => columns.Single(c => c.Property == p.Name)).ToList();
        return new EntityShape(table.Name, table.Schema, columns, key);
    }

    static Func<object, object?> Getter(IProperty property)
    {
        var instance = Expression.Parameter(typeof(object));
        var body = Expression.Convert(
            Expression.Property(Expression.Convert(instance, property.DeclaringType.ClrType), property.PropertyInfo!),
            typeof(object));
        return Expression.Lambda<Func<object, object?>>(body, instance).Compile();
    }
}

/// <summary>One column: its name, EF type mapping (converter and parameter setup) and a compiled getter.</summary>
internal sealed record ColumnShape(string Property, string Column, RelationalTypeMapping Mapping, bool Nullable, Func<object, object?> Get);
