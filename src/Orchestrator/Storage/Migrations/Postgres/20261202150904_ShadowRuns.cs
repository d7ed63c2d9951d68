using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Orchestrator.Storage.Migrations.Postgres
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
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    Kind = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Candidate = table.Column<int>(type: "integer", nullable: false),
                    Stable = table.Column<int>(type: "integer", nullable: false),
                    PrimaryJobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false, collation: "C"),
                    Reason = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true, collation: "C"),
                    ErrorMessage = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: true, collation: "C"),
                    Owner = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C"),
                    LeaseUntil = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Attempts = table.Column<int>(type: "integer", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    StartedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    CompletedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Output = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    Identical = table.Column<bool>(type: "boolean", nullable: true),
                    Comparison = table.Column<string>(type: "text", nullable: true, collation: "C"),
                    LatencyMs = table.Column<long>(type: "bigint", nullable: true),
                    PrimaryLatencyMs = table.Column<long>(type: "bigint", nullable: true),
                    CostMicros = table.Column<long>(type: "bigint", nullable: false),
                    PrimaryCostMicros = table.Column<long>(type: "bigint", nullable: true)
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
