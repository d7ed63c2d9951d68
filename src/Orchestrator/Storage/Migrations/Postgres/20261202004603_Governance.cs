using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Governance : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "CostMicros",
                table: "Jobs",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "HeldMicros",
                table: "Jobs",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "HeldTokens",
                table: "Jobs",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "InputTokens",
                table: "Jobs",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "OutputTokens",
                table: "Jobs",
                type: "bigint",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "ApiKeys",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    Hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Prefix = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Principal = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Roles = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    CreatedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    ExpiresAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Revoked = table.Column<bool>(type: "boolean", nullable: false),
                    RevokedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    RevokedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ApiKeys", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "BudgetHolds",
                columns: table => new
                {
                    JobId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false, collation: "C"),
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Principal = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Period = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false, collation: "C"),
                    Tokens = table.Column<long>(type: "bigint", nullable: false),
                    Micros = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_BudgetHolds", x => x.JobId);
                });

            migrationBuilder.CreateTable(
                name: "Tenants",
                columns: table => new
                {
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Document = table.Column<string>(type: "text", nullable: false, collation: "C"),
                    Version = table.Column<long>(type: "bigint", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    UpdatedBy = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C")
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Tenants", x => x.Tenant);
                });

            migrationBuilder.CreateTable(
                name: "UsageCounters",
                columns: table => new
                {
                    Tenant = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false, collation: "C"),
                    Scope = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false, collation: "C"),
                    Kind = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false, collation: "C"),
                    Period = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false, collation: "C"),
                    Used = table.Column<long>(type: "bigint", nullable: false),
                    Held = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UsageCounters", x => new { x.Tenant, x.Scope, x.Kind, x.Period });
                });

            migrationBuilder.CreateIndex(
                name: "IX_ApiKeys_Hash",
                table: "ApiKeys",
                column: "Hash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_ApiKeys_Tenant",
                table: "ApiKeys",
                column: "Tenant");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ApiKeys");

            migrationBuilder.DropTable(
                name: "BudgetHolds");

            migrationBuilder.DropTable(
                name: "Tenants");

            migrationBuilder.DropTable(
                name: "UsageCounters");

            migrationBuilder.DropColumn(
                name: "CostMicros",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "HeldMicros",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "HeldTokens",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "InputTokens",
                table: "Jobs");

            migrationBuilder.DropColumn(
                name: "OutputTokens",
                table: "Jobs");
        }
    }
}
