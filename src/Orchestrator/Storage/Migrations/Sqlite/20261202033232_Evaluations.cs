using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Sqlite
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
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    Tenant = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    Principal = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Operator = table.Column<bool>(type: "INTEGER", nullable: false),
                    Status = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    Suite = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    SuiteHash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    BaselineHash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    CandidateHash = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Seed = table.Column<long>(type: "INTEGER", nullable: false),
                    Plan = table.Column<string>(type: "TEXT", nullable: false),
                    Verdict = table.Column<string>(type: "TEXT", maxLength: 10, nullable: true),
                    Result = table.Column<string>(type: "TEXT", nullable: true),
                    Error = table.Column<string>(type: "TEXT", nullable: true),
                    CancelRequested = table.Column<bool>(type: "INTEGER", nullable: false),
                    Owner = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    LeaseUntil = table.Column<DateTime>(type: "TEXT", nullable: true),
                    Epoch = table.Column<long>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    CompletedAt = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Evaluations", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "EvaluationCaseRuns",
                columns: table => new
                {
                    EvaluationId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    CaseId = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    Repeat = table.Column<int>(type: "INTEGER", nullable: false),
                    Arm = table.Column<string>(type: "TEXT", maxLength: 10, nullable: false),
                    JobId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: true),
                    TraceId = table.Column<string>(type: "TEXT", maxLength: 32, nullable: true),
                    Status = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    ErrorCode = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    Passed = table.Column<bool>(type: "INTEGER", nullable: false),
                    Score = table.Column<double>(type: "REAL", nullable: true),
                    LatencyMs = table.Column<double>(type: "REAL", nullable: true),
                    CostUsd = table.Column<double>(type: "REAL", nullable: false),
                    JudgeCostUsd = table.Column<double>(type: "REAL", nullable: false),
                    Model = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    Assertions = table.Column<string>(type: "TEXT", nullable: false),
                    Output = table.Column<string>(type: "TEXT", nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
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
