using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ShadowRuns : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "ShadowRuns",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    Candidate = table.Column<int>(type: "INTEGER", nullable: false),
                    Stable = table.Column<int>(type: "INTEGER", nullable: false),
                    PrimaryJobId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    Tenant = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    Status = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    ErrorMessage = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: true),
                    Owner = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    LeaseUntil = table.Column<DateTime>(type: "TEXT", nullable: true),
                    Attempts = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    CompletedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    Output = table.Column<string>(type: "TEXT", nullable: true),
                    Identical = table.Column<bool>(type: "INTEGER", nullable: true),
                    Comparison = table.Column<string>(type: "TEXT", nullable: true),
                    LatencyMs = table.Column<long>(type: "INTEGER", nullable: true),
                    PrimaryLatencyMs = table.Column<long>(type: "INTEGER", nullable: true),
                    CostMicros = table.Column<long>(type: "INTEGER", nullable: false),
                    PrimaryCostMicros = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ShadowRuns", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_ShadowRuns_CompletedAt",
                table: "ShadowRuns",
                column: "CompletedAt");

            migrationBuilder.CreateIndex(
                name: "IX_ShadowRuns_Kind_Candidate_Stable",
                table: "ShadowRuns",
                columns: new[] { "Kind", "Candidate", "Stable" });

            migrationBuilder.CreateIndex(
                name: "IX_ShadowRuns_PrimaryJobId_Kind",
                table: "ShadowRuns",
                columns: new[] { "PrimaryJobId", "Kind" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_ShadowRuns_Status_LeaseUntil",
                table: "ShadowRuns",
                columns: new[] { "Status", "LeaseUntil" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ShadowRuns");
        }
    }
}
