using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Evaluations : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "Evaluations",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Principal = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Operator = table.Column<bool>(type: "boolean", nullable: false),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Suite = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    SuiteHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    BaselineHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    CandidateHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Seed = table.Column<long>(type: "bigint", nullable: false),
                    Plan = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Verdict = table.Column<string>(type: "character varying(10)", maxLength: 10, nullable: true, collation: "C"),
                    Result = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Error = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    CancelRequested = table.Column<bool>(type: "boolean", nullable: false),
                    Owner = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    LeaseUntil = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Epoch = table.Column<long>(type: "bigint", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    CompletedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Evaluations", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "EvaluationCaseRuns",
                columns: table => new
                {
                    EvaluationId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    CaseId = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false, collation: "C"),
                    Repeat = table.Column<int>(type: "integer", nullable: false),
                    Arm = table.Column<string>(type: "character varying(10)", maxLength: 10, nullable: false, collation: "C"),
                    JobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: true, collation: "C"),
                    TraceId = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: true, collation: "C"),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    ErrorCode = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    Passed = table.Column<bool>(type: "boolean", nullable: false),
                    Score = table.Column<double>(type: "double precision", nullable: true),
                    LatencyMs = table.Column<double>(type: "double precision", nullable: true),
                    CostUsd = table.Column<double>(type: "double precision", nullable: false),
                    JudgeCostUsd = table.Column<double>(type: "double precision", nullable: false),
                    Model = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    Assertions = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Output = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_EvaluationCaseRuns", x => new { x.EvaluationId, x.CaseId, x.Repeat, x.Arm });
                    table.ForeignKey(
                        name: "FK_EvaluationCaseRuns_Evaluations_EvaluationId",
                        column: x => x.EvaluationId,
                        principalTable: "Evaluations",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Evaluations_CandidateHash_Verdict",
                table: "Evaluations",
                columns: new[] { "CandidateHash", "Verdict" });

            migrationBuilder.CreateIndex(
                name: "IX_Evaluations_Status",
                table: "Evaluations",
                column: "Status",
                filter: "\"Status\" IN ('accepted', 'running')");

            migrationBuilder.CreateIndex(
                name: "IX_Evaluations_Tenant_Id",
                table: "Evaluations",
                columns: new[] { "Tenant", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "EvaluationCaseRuns");

            migrationBuilder.DropTable(
                name: "Evaluations");
        }
    }
}
