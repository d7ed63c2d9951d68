using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Initial : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "Jobs",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    TraceId = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Principal = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Intent = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    Priority = table.Column<string>(type: "character varying(10)", maxLength: 10, nullable: false),
                    Sync = table.Column<bool>(type: "boolean", nullable: false),
                    IdempotencyKey = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    Session = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    Request = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    PolicyHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    RoutingHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    DeadlineMs = table.Column<int>(type: "integer", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    DeadlineAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    CompletedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Attempts = table.Column<int>(type: "integer", nullable: false),
                    NextAttemptAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    CancelRequested = table.Column<bool>(type: "boolean", nullable: false),
                    Owner = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    Epoch = table.Column<long>(type: "bigint", nullable: false),
                    LeaseUntil = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    CurrentNode = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    Output = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Routing = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    ErrorCode = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    ErrorMessage = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    QueueMs = table.Column<long>(type: "bigint", nullable: true),
                    RunMs = table.Column<long>(type: "bigint", nullable: true),
                    Breached = table.Column<bool>(type: "boolean", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Jobs", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "ModelControls",
                columns: table => new
                {
                    ModelId = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Quarantined = table.Column<bool>(type: "boolean", nullable: false),
                    Version = table.Column<long>(type: "bigint", nullable: false),
                    ChangedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    ChangedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    WaitUntil = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ModelControls", x => x.ModelId);
                });

            migrationBuilder.CreateTable(
                name: "Nodes",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    StartedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    HeartbeatAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    Running = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Nodes", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "ReplayImports",
                columns: table => new
                {
                    TraceId = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    JobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    ImportedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    ImportedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    Package = table.Column<string>(type: "text", nullable: false, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ReplayImports", x => x.TraceId);
                });

            migrationBuilder.CreateTable(
                name: "Snapshots",
                columns: table => new
                {
                    Hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Kind = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true, collation: "C"),
                    Version = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: true, collation: "C"),
                    Content = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Snapshots", x => x.Hash);
                });

            migrationBuilder.CreateTable(
                name: "JobNodes",
                columns: table => new
                {
                    JobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    NodeId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Seq = table.Column<int>(type: "integer", nullable: false),
                    Kind = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    Parents = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Attempts = table.Column<int>(type: "integer", nullable: false),
                    Input = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Output = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    ErrorCode = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    ErrorMessage = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    StartedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    CompletedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_JobNodes", x => new { x.JobId, x.NodeId });
                    table.ForeignKey(
                        name: "FK_JobNodes_Jobs_JobId",
                        column: x => x.JobId,
                        principalTable: "Jobs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Jobs_Status",
                table: "Jobs",
                column: "Status",
                filter: "\"Status\" IN ('accepted', 'running', 'awaiting_approval')");

            migrationBuilder.CreateIndex(
                name: "IX_Jobs_Tenant_Id",
                table: "Jobs",
                columns: new[] { "Tenant", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_Jobs_Tenant_IdempotencyKey",
                table: "Jobs",
                columns: new[] { "Tenant", "IdempotencyKey" },
                unique: true,
                filter: "\"IdempotencyKey\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_Jobs_TraceId",
                table: "Jobs",
                column: "TraceId");

            migrationBuilder.CreateIndex(
                name: "IX_ReplayImports_ImportedAt",
                table: "ReplayImports",
                column: "ImportedAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "JobNodes");

            migrationBuilder.DropTable(
                name: "ModelControls");

            migrationBuilder.DropTable(
                name: "Nodes");

            migrationBuilder.DropTable(
                name: "ReplayImports");

            migrationBuilder.DropTable(
                name: "Snapshots");

            migrationBuilder.DropTable(
                name: "Jobs");
        }
    }
}
