using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Approvals : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "ApprovalWebhooks",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    ApprovalId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Event = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    Body = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    Attempts = table.Column<int>(type: "integer", nullable: false),
                    NextAttemptAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    DeliveredAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    FailedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    LastError = table.Column<string>(type: "text", nullable: true, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ApprovalWebhooks", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Approvals",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    JobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    NodeId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    TraceId = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    RequestedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Capability = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Arguments = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Reason = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Rule = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    RuleVersion = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    RuleSnapshot = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    BindingHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    RequestedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    DeadlineAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    JobDeadlineAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    EscalationLevel = table.Column<int>(type: "integer", nullable: false),
                    Escalations = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Decisions = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    ApprovedArguments = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    ApprovedHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    DecidedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Version = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Approvals", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_ApprovalWebhooks_ApprovalId",
                table: "ApprovalWebhooks",
                column: "ApprovalId");

            migrationBuilder.CreateIndex(
                name: "IX_ApprovalWebhooks_NextAttemptAt",
                table: "ApprovalWebhooks",
                column: "NextAttemptAt",
                filter: "\"NextAttemptAt\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_Approvals_DeadlineAt",
                table: "Approvals",
                column: "DeadlineAt",
                filter: "\"Status\" = 'pending'");

            migrationBuilder.CreateIndex(
                name: "IX_Approvals_JobId_NodeId",
                table: "Approvals",
                columns: new[] { "JobId", "NodeId" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Approvals_Tenant_RequestedAt",
                table: "Approvals",
                columns: new[] { "Tenant", "RequestedAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ApprovalWebhooks");

            migrationBuilder.DropTable(
                name: "Approvals");
        }
    }
}
